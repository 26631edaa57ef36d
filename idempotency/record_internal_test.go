package idempotency

import (
	"bytes"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	fp := Fingerprint{1, 2, 3}
	tests := []Record{
		{Status: 200},
		{Status: 201, Header: []Field{{"Content-Type", "application/json"}, {"Location", ""}}, Body: []byte(`{"id":1}`)},
		{Status: 13, Header: []Field{{"t", "pkg.Msg"}}, Body: []byte{0, 1, 2}},
		{Status: 599, Oversized: true},
	}
	for _, want := range tests {
		gfp, got, err := decodeRecord(encodeRecord(fp, &want))
		if err != nil || gfp != fp || got.Status != want.Status || got.Oversized != want.Oversized ||
			!bytes.Equal(got.Body, want.Body) || len(got.Header) != len(want.Header) {
			t.Fatalf("round trip of %+v = %+v, %v", want, got, err)
		}
		for i := range got.Header {
			if got.Header[i] != want.Header[i] {
				t.Fatalf("header %d = %v, want %v", i, got.Header[i], want.Header[i])
			}
		}
	}
}

// FuzzDecodeRecord: a corrupt record (a store shared with something else)
// is an error, never a panic or a huge allocation.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(Fingerprint{}, &Record{Status: 201, Header: []Field{{"A", "b"}}, Body: []byte("x")}))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, r, err := decodeRecord(b)
		if err == nil && len(r.Header) > len(b) {
			t.Fatalf("%d fields from %d bytes", len(r.Header), len(b))
		}
	})
}
