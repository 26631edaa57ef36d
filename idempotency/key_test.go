package idempotency_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/idempotency"
)

func TestParseKey(t *testing.T) {
	long := strings.Repeat("k", idempotency.MaxKeyLength)
	tests := []struct {
		name    string
		give    []string
		want    string
		wantErr bool
	}{
		{name: "sf-string uuid", give: []string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`}, want: "8e03978e-40d5-43e8-bc93-6894a57f9324"},
		{name: "bare uuid", give: []string{"8e03978e-40d5-43e8-bc93-6894a57f9324"}, want: "8e03978e-40d5-43e8-bc93-6894a57f9324"},
		{name: "surrounding spaces", give: []string{"  \"abc\"\t"}, want: "abc"},
		{name: "escapes", give: []string{`"a\"b\\c"`}, want: `a"b\c`},
		{name: "spaces inside a string", give: []string{`"a b"`}, want: "a b"},
		{name: "parameters ignored", give: []string{`"abc";a=1;b;c="x";d=?0;e=:aGk=:;f=tok/en;g=-1.5`}, want: "abc"},
		{name: "parameter after space", give: []string{`"abc"; a=1`}, want: "abc"},
		{name: "255 characters", give: []string{long}, want: long},
		{name: "255 quoted", give: []string{`"` + long + `"`}, want: long},
		{name: "255 decoded from escapes", give: []string{`"` + strings.Repeat(`\\`, 255) + `"`}, want: strings.Repeat(`\`, 255)},
		{name: "bare single quotes", give: []string{"'foo'"}, want: "'foo'"},

		{name: "no value", give: nil, wantErr: true},
		{name: "two fields", give: []string{"a", "b"}, wantErr: true},
		{name: "empty", give: []string{""}, wantErr: true},
		{name: "only spaces", give: []string{"   "}, wantErr: true},
		{name: "empty string", give: []string{`""`}, wantErr: true},
		{name: "256 characters", give: []string{long + "k"}, wantErr: true},
		{name: "256 quoted", give: []string{`"` + long + `k"`}, wantErr: true},
		{name: "list of strings", give: []string{`"a", "b"`}, wantErr: true},
		{name: "bare list", give: []string{"a,b"}, wantErr: true},
		{name: "unterminated", give: []string{`"abc`}, wantErr: true},
		{name: "bad escape", give: []string{`"a\,b"`}, wantErr: true},
		{name: "trailing backslash", give: []string{`"abc\`}, wantErr: true},
		{name: "control char in string", give: []string{"\"a\x01b\""}, wantErr: true},
		{name: "tab in string", give: []string{"\"a\tb\""}, wantErr: true},
		{name: "non-ascii in string", give: []string{"\"caf\u00e9\""}, wantErr: true},
		{name: "non-ascii bare", give: []string{"caf\u00e9"}, wantErr: true},
		{name: "space in bare", give: []string{"a b"}, wantErr: true},
		{name: "quote in bare", give: []string{`ab"c`}, wantErr: true},
		{name: "junk after string", give: []string{`"abc"x`}, wantErr: true},
		{name: "bad parameter name", give: []string{`"abc";A=1`}, wantErr: true},
		{name: "bad parameter value", give: []string{`"abc";a=@`}, wantErr: true},
		{name: "empty parameter value", give: []string{`"abc";a=`}, wantErr: true},
		{name: "decimal ending in dot", give: []string{`"abc";a=1.`}, wantErr: true},
		{name: "unterminated byte sequence", give: []string{`"abc";a=:aGk`}, wantErr: true},
		{name: "huge value", give: []string{`"` + strings.Repeat("k", 1<<20) + `"`}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := idempotency.ParseKey(tt.give)
			if tt.wantErr {
				if !errors.Is(err, idempotency.ErrInvalidKey) {
					t.Fatalf("ParseKey(%q) = %q, %v; want ErrInvalidKey", tt.give, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseKey(%q) = %q, %v; want %q", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestParseKeyBareDoesNotAllocate(t *testing.T) {
	v := []string{"8e03978e-40d5-43e8-bc93-6894a57f9324"}
	q := []string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`}
	if n := testing.AllocsPerRun(100, func() { _, _ = idempotency.ParseKey(v) }); n != 0 {
		t.Errorf("bare: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = idempotency.ParseKey(q) }); n != 0 {
		t.Errorf("sf-string without escapes: %v allocs, want 0", n)
	}
}

// sfQuote serializes k as an RFC 8941 sf-string.
func sfQuote(k string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(k) + `"`
}

// FuzzParseKey checks that the parser never panics, that what it accepts
// is a key (1 to 255 characters of printable ASCII), and that an
// sf-string serialization of an accepted key parses back to it. The seeds
// include the string cases of the httpwg structured-field tests.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		// httpwg/structured-field-tests string.json and string-generated.json
		`"foo"`, `'foo'`, `"foo`, `"foo \"bar\""`, `"foo \,"`, `"foo \`,
		`""`, `" "`, `"  foo  "`, "\"foo\tbar\"", "\"\u00fc\"", `"\a"`, `"\\"`, `"\""`,
		`"` + strings.Repeat("a", 1024) + `"`, "\"\x7f\"", "\"\x1f\"", `"foo" `, ` "foo"`,
		`"foo";a=1`, `"foo";a`, `"foo", "bar"`, `"foo" "bar"`,
		// bare forms
		"8e03978e-40d5-43e8-bc93-6894a57f9324", "a,b", "a b", "", "\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		k, err := idempotency.ParseKey([]string{v})
		if err != nil {
			if !errors.Is(err, idempotency.ErrInvalidKey) {
				t.Fatalf("ParseKey(%q) error %v does not wrap ErrInvalidKey", v, err)
			}
			return
		}
		if k == "" || len(k) > idempotency.MaxKeyLength {
			t.Fatalf("ParseKey(%q) = %q: length %d outside 1..255", v, k, len(k))
		}
		for i := 0; i < len(k); i++ {
			if k[i] < 0x20 || k[i] > 0x7e {
				t.Fatalf("ParseKey(%q) = %q: byte %#x is not printable ASCII", v, k, k[i])
			}
		}
		back, err := idempotency.ParseKey([]string{sfQuote(k)})
		if err != nil || back != k {
			t.Fatalf("ParseKey(sf-string of %q) = %q, %v; want the key back", k, back, err)
		}
	})
}
