package idempotency

import (
	"fmt"
	"strings"
)

// MaxKeyLength is the longest key accepted, in characters of the decoded
// key (Stripe's limit).
const MaxKeyLength = 255

// ParseKey parses the values of the Idempotency-Key field (HTTP header
// lines or gRPC metadata values) and returns the decoded key. It accepts
//
//   - an RFC 8941 sf-string: "8e03978e-40d5-43e8-bc93-6894a57f9324", with
//     \" and \\ escapes, optionally followed by parameters, which are
//     checked and ignored;
//   - the bare form clients commonly send: visible ASCII without spaces,
//     double quotes or commas (an unquoted UUID).
//
// Leading and trailing spaces and tabs are ignored. It returns an error
// wrapping [ErrInvalidKey] for no value or several values (several fields,
// or a list "a", "b"), an empty key, a malformed one, or one longer than
// [MaxKeyLength] characters. A bare key is returned without allocating.
func ParseKey(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", fmt.Errorf("%w: no value", ErrInvalidKey)
	case 1:
	default:
		return "", fmt.Errorf("%w: sent %d times; send one Idempotency-Key", ErrInvalidKey, len(values))
	}
	v := strings.Trim(values[0], " \t")
	if v == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if v[0] != '"' {
		return bareKey(v)
	}
	key, rest, err := sfString(v)
	if err != nil {
		return "", err
	}
	if err := sfParams(rest); err != nil {
		return "", err
	}
	if key == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLength {
		return "", fmt.Errorf("%w: %d characters, longer than %d", ErrInvalidKey, len(key), MaxKeyLength)
	}
	return key, nil
}

// bareKey checks the bare form: visible ASCII except '"' and ','.
func bareKey(v string) (string, error) {
	if len(v) > MaxKeyLength {
		return "", fmt.Errorf("%w: %d characters, longer than %d", ErrInvalidKey, len(v), MaxKeyLength)
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == ',':
			return "", fmt.Errorf("%w: a list; send one key", ErrInvalidKey)
		case c == '"':
			return "", fmt.Errorf("%w: unbalanced quote at %d", ErrInvalidKey, i)
		case c <= ' ' || c >= 0x7f:
			return "", fmt.Errorf("%w: byte %#x at %d (a bare key is visible ASCII without spaces)", ErrInvalidKey, c, i)
		}
	}
	return v, nil
}

// sfString parses the sf-string at the start of v (v[0] == '"') and
// returns it decoded and what follows it. A string without escapes is a
// substring of v.
func sfString(v string) (key, rest string, err error) {
	var b *strings.Builder
	start := 1
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			if b == nil {
				return v[1:i], v[i+1:], nil
			}
			b.WriteString(v[start:i])
			return b.String(), v[i+1:], nil
		case c == '\\':
			if i+1 >= len(v) || (v[i+1] != '"' && v[i+1] != '\\') {
				return "", "", fmt.Errorf("%w: bad escape at %d (only \\\" and \\\\)", ErrInvalidKey, i)
			}
			if b == nil {
				b = &strings.Builder{}
				b.Grow(len(v))
			}
			b.WriteString(v[start:i])
			i++
			start = i
		case c < 0x20 || c >= 0x7f:
			return "", "", fmt.Errorf("%w: byte %#x at %d in a string", ErrInvalidKey, c, i)
		}
		if i-1 > MaxKeyLength*2+2 {
			// Longer than any acceptable key, escapes included: stop
			// scanning a huge value.
			return "", "", fmt.Errorf("%w: longer than %d characters", ErrInvalidKey, MaxKeyLength)
		}
	}
	return "", "", fmt.Errorf("%w: unterminated string", ErrInvalidKey)
}

// sfParams checks RFC 8941 parameters: *( ";" *SP key [ "=" bare-item ] ).
// A list (",") or anything else after the item is an error.
func sfParams(s string) error {
	for len(s) > 0 {
		if s[0] == ',' {
			return fmt.Errorf("%w: a list; send one key", ErrInvalidKey)
		}
		if s[0] != ';' {
			return fmt.Errorf("%w: unexpected %q after the key", ErrInvalidKey, s[0])
		}
		s = strings.TrimLeft(s[1:], " ")
		// key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
		if s == "" || !(isLower(s[0]) || s[0] == '*') {
			return fmt.Errorf("%w: bad parameter name", ErrInvalidKey)
		}
		i := 1
		for i < len(s) && (isLower(s[i]) || isDigit(s[i]) || strings.IndexByte("_-.*", s[i]) >= 0) {
			i++
		}
		s = s[i:]
		if s != "" && s[0] == '=' {
			n, err := bareItem(s[1:])
			if err != nil {
				return err
			}
			s = s[1+n:]
		}
	}
	return nil
}

// bareItem returns the length of the RFC 8941 bare item at the start of s.
func bareItem(s string) (int, error) {
	bad := fmt.Errorf("%w: bad parameter value", ErrInvalidKey)
	if s == "" {
		return 0, bad
	}
	switch c := s[0]; {
	case c == '"':
		_, rest, err := sfString(s)
		if err != nil {
			return 0, err
		}
		return len(s) - len(rest), nil
	case c == '?': // boolean
		if len(s) >= 2 && (s[1] == '0' || s[1] == '1') {
			return 2, nil
		}
		return 0, bad
	case c == ':': // byte sequence
		end := strings.IndexByte(s[1:], ':')
		if end < 0 {
			return 0, bad
		}
		for i := 1; i <= end; i++ {
			if !isBase64(s[i]) {
				return 0, bad
			}
		}
		return end + 2, nil
	case c == '-' || isDigit(c): // integer or decimal
		i, digits, dot := 0, 0, false
		if c == '-' {
			i = 1
		}
		for ; i < len(s); i++ {
			switch {
			case isDigit(s[i]):
				digits++
			case s[i] == '.' && !dot && digits > 0:
				dot = true
			default:
				goto end
			}
		}
	end:
		if digits == 0 || digits > 15 || s[i-1] == '.' {
			return 0, bad
		}
		return i, nil
	case isAlpha(c) || c == '*': // token
		i := 1
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		return i, nil
	}
	return 0, bad
}

func isLower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool  { return isLower(c) || (c >= 'A' && c <= 'Z') }
func isBase64(c byte) bool { return isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=' }

// isTokenChar: tchar / ":" / "/".
func isTokenChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0
}
