// Package sysexits maps aion-exec's own failures to the BSD sysexits codes
// that the contract promises (64 usage/config, 65 template/data, 69 Vault
// unavailable, 77 permission denied). Packages wrap their errors with a code;
// main turns the first code found in the chain into the process exit status.
// It must never format an error itself: messages belong to the caller.
package sysexits

import "errors"

// Exit codes from sysexits.h that aion-exec uses.
const (
	OK          = 0
	Usage       = 64 // EX_USAGE: bad flags or configuration
	DataErr     = 65 // EX_DATAERR: a template or secret payload is wrong
	NoInput     = 66 // EX_NOINPUT: a named input file is missing
	Unavailable = 69 // EX_UNAVAILABLE: Vault unreachable, sealed, timing out
	Software    = 70 // EX_SOFTWARE: an internal error
	CantCreate  = 73 // EX_CANTCREAT: an output file cannot be written
	IOErr       = 74 // EX_IOERR
	TempFail    = 75 // EX_TEMPFAIL
	NoPerm      = 77 // EX_NOPERM: Vault denied a capability
	Config      = 78 // EX_CONFIG (unused by the contract, kept for completeness)
)

// Error carries an exit code along an error chain.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Wrap attaches code to err. A nil err stays nil.
func Wrap(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Code returns the exit code of the outermost coded error in err's chain,
// Software for an uncoded error, and OK for nil.
func Code(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Software
}
