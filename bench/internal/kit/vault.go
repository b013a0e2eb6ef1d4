// Package kit holds what the benchmark commands share: the little of
// Vault's HTTP API they use, with the standard library only (the bench
// module stays free of Vault's SDK).
package kit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Vault sends requests to one Vault address with one token ("" for none).
type Vault struct {
	Addr, Token string
	HC          *http.Client
}

// Do sends one request; a status of 300 or more is an error with Vault's
// answer in it. out, when given, is filled from the JSON answer.
func (v *Vault) Do(ctx context.Context, method, path string, body, out any) error {
	code, b, err := v.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	if code >= 300 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, code, strings.TrimSpace(string(b)))
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Status sends one request and returns its HTTP status: 501 and 503 (not
// initialised, sealed, standby) are answers, not errors. out is filled from
// any answer that parses.
func (v *Vault) Status(ctx context.Context, method, path string, body, out any) (int, error) {
	code, b, err := v.send(ctx, method, path, body)
	if err != nil {
		return 0, err
	}
	if code >= 300 && code != http.StatusServiceUnavailable && code != http.StatusNotImplemented {
		return code, fmt.Errorf("%s %s: HTTP %d: %s", method, path, code, strings.TrimSpace(string(b)))
	}
	if out != nil && len(b) > 0 {
		_ = json.Unmarshal(b, out)
	}
	return code, nil
}

func (v *Vault) send(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, v.Addr+"/v1/"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if v.Token != "" {
		req.Header.Set("X-Vault-Token", v.Token)
	}
	resp, err := v.HC.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}
