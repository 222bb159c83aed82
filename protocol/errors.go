package protocol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cuivre/cuivre/protocol/pb"
)

// Code is a stable error code shared by the wire (pb.Error) and Go errors (SPEC 8).
type Code = pb.Code

// Error is a typed protocol error. Compare with errors.Is against the sentinels
// below: two Errors match when their codes are equal, whatever their messages.
type Error struct {
	Code Code
	Msg  string
	// RetryAfter is the sender's hint that the same request may succeed
	// after it (Error.retry_after_ms); 0 for none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	name := strings.ToLower(strings.TrimPrefix(e.Code.String(), "CODE_"))
	if e.Msg == "" {
		return name
	}
	return name + ": " + e.Msg
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first *Error in err's chain, CODE_UNSPECIFIED
// for nil, and CODE_INTERNAL for any other error.
func CodeOf(err error) Code {
	if err == nil {
		return pb.Code_CODE_UNSPECIFIED
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return pb.Code_CODE_INTERNAL
}

// ToPB turns an error into its wire form; nil, and a nil *Error, stay nil.
func ToPB(err error) *pb.Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if e == nil {
			return nil
		}
		return &pb.Error{Code: e.Code, Message: e.Msg, RetryAfterMs: uint64(e.RetryAfter / time.Millisecond)}
	}
	return &pb.Error{Code: pb.Code_CODE_INTERNAL, Message: err.Error()}
}

// FromPB turns a wire error into a Go error; nil stays nil. An unknown code is
// kept as it is, so a newer peer's refusal still reads as a refusal.
func FromPB(e *pb.Error) error {
	if e == nil {
		return nil
	}
	return &Error{Code: e.Code, Msg: e.Message, RetryAfter: time.Duration(min(e.RetryAfterMs, uint64(time.Hour/time.Millisecond))) * time.Millisecond}
}

// RetryAfterOf returns the retry-after hint of the first *Error in err's
// chain, 0 for none.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e.RetryAfter
	}
	return 0
}

// Sentinels for errors.Is.
var (
	ErrMalformed    = &Error{Code: pb.Code_CODE_MALFORMED}
	ErrTooLarge     = &Error{Code: pb.Code_CODE_TOO_LARGE}
	ErrUnsupported  = &Error{Code: pb.Code_CODE_UNSUPPORTED_VERSION}
	ErrBadSignature = &Error{Code: pb.Code_CODE_BAD_SIGNATURE}
	ErrWrongDomain  = &Error{Code: pb.Code_CODE_WRONG_DOMAIN}
	ErrWrongSigner  = &Error{Code: pb.Code_CODE_WRONG_SIGNER}
	ErrExpired      = &Error{Code: pb.Code_CODE_EXPIRED}
	ErrReplayed     = &Error{Code: pb.Code_CODE_REPLAYED}
	ErrStaleEpoch   = &Error{Code: pb.Code_CODE_STALE_EPOCH}
	ErrTooFarAhead  = &Error{Code: pb.Code_CODE_TOO_FAR_AHEAD}
)

// Short names for the codes used most in Go code.
const (
	CodeMalformed    = pb.Code_CODE_MALFORMED
	CodeTooLarge     = pb.Code_CODE_TOO_LARGE
	CodeBadSignature = pb.Code_CODE_BAD_SIGNATURE
	CodeWrongDomain  = pb.Code_CODE_WRONG_DOMAIN
	CodeWrongSigner  = pb.Code_CODE_WRONG_SIGNER
	CodeExpired      = pb.Code_CODE_EXPIRED
	CodeReplayed     = pb.Code_CODE_REPLAYED
	CodeStaleEpoch   = pb.Code_CODE_STALE_EPOCH
	CodeTooFarAhead  = pb.Code_CODE_TOO_FAR_AHEAD
	CodeUnauthorized = pb.Code_CODE_UNAUTHORIZED

	// Wholesale (SPEC 6.7).
	CodeSliceFull         = pb.Code_CODE_SLICE_FULL
	CodeSliceBelowMinimum = pb.Code_CODE_SLICE_BELOW_MINIMUM
	CodeSliceNotAllowed   = pb.Code_CODE_SLICE_NOT_ALLOWED
	CodeTariffMismatch    = pb.Code_CODE_TARIFF_MISMATCH
	CodeGrantWrongSite    = pb.Code_CODE_GRANT_WRONG_SITE
	CodeGrantWrongGrantee = pb.Code_CODE_GRANT_WRONG_GRANTEE
	CodeSliceExceeded     = pb.Code_CODE_SLICE_EXCEEDED
	CodeNoticeTooShort    = pb.Code_CODE_NOTICE_TOO_SHORT
	CodeSliceNotStarted   = pb.Code_CODE_SLICE_NOT_STARTED
)

// Quote quotes a string for a message, cut after 64 bytes (a CID fits): a
// message should point at a mistake, not echo a megabyte of it.
func Quote(s string) string {
	const n = 64
	if len(s) <= n {
		return strconv.Quote(s)
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
