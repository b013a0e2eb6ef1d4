package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/aionos/aion-exec/internal/bootstrap"
	"github.com/aionos/aion-exec/internal/config"
)

// devBootstrap prepares the local Vault at AION_VAULT_ADDR for development
// and prints what it created and what was already there, even when it
// fails half-way. The state directory and the env file are the Python
// script's: .vault/ and .env.vault.dev in the current directory.
func devBootstrap(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	if cfg.Env != "" && cfg.Env != bootstrap.Env {
		log.Warn("dev bootstrap seeds the dev deployment whatever AION_ENV says", "AION_ENV", cfg.Env, "seeds", bootstrap.SecretPrefix)
	}
	sum, err := bootstrap.Run(ctx, bootstrap.Options{
		Addr:         cfg.VaultAddr,
		KVMount:      cfg.KVMount,
		AppRoleMount: cfg.AppRoleMount,
		Namespace:    cfg.Namespace,
		CACert:       cfg.CACert,
		CAPath:       cfg.CAPath,
		Timeout:      cfg.BootstrapTimeout,
		Log:          log,
	})
	if _, werr := sum.WriteTo(stdout); err == nil {
		err = werr
	}
	return err
}
