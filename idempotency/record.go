package idempotency

import (
	"encoding/binary"
	"errors"
)

// Record is a stored response, in terms both faces use: HTTP keeps its
// status, the headers that describe the body, and the body; gRPC keeps its
// status code, the response message's type and its marshaling (or the
// error status).
type Record struct {
	// Status is the HTTP status or the gRPC code.
	Status int
	// Header holds the fields to replay, in order.
	Header []Field
	// Body is the response body. In a record returned by [Guard.Begin]
	// it may share memory with the store: do not modify it.
	Body []byte
	// Oversized marks a response whose body was larger than
	// [WithMaxResponseBytes]: only the status was kept, and a duplicate
	// gets [ErrNotReplayable].
	Oversized bool
}

// Field is one header field of a [Record].
type Field struct {
	Name, Value string
}

const recordVersion = 1

var errCorrupt = errors.New("idempotency: corrupt record")

// encodeRecord lays out fp and r: version, flags, fingerprint, status,
// fields (length-prefixed), then the body.
func encodeRecord(fp Fingerprint, r *Record) []byte {
	n := 2 + len(fp) + binary.MaxVarintLen64*2 + len(r.Body)
	for _, f := range r.Header {
		n += 2*binary.MaxVarintLen64 + len(f.Name) + len(f.Value)
	}
	b := make([]byte, 0, n)
	var flags byte
	if r.Oversized {
		flags = 1
	}
	b = append(b, recordVersion, flags)
	b = append(b, fp[:]...)
	b = binary.AppendUvarint(b, uint64(int64(r.Status)))
	b = binary.AppendUvarint(b, uint64(len(r.Header)))
	for _, f := range r.Header {
		b = binary.AppendUvarint(b, uint64(len(f.Name)))
		b = append(b, f.Name...)
		b = binary.AppendUvarint(b, uint64(len(f.Value)))
		b = append(b, f.Value...)
	}
	return append(b, r.Body...)
}

// decodeRecord reads what encodeRecord wrote. The body shares b.
func decodeRecord(b []byte) (fp Fingerprint, r Record, err error) {
	if len(b) < 2+len(fp) || b[0] != recordVersion {
		return fp, r, errCorrupt
	}
	r.Oversized = b[1]&1 != 0
	copy(fp[:], b[2:])
	b = b[2+len(fp):]
	status, n := binary.Uvarint(b)
	if n <= 0 {
		return fp, r, errCorrupt
	}
	r.Status = int(int64(status))
	b = b[n:]
	nf, n := binary.Uvarint(b)
	if n <= 0 || nf > uint64(len(b)) {
		return fp, r, errCorrupt
	}
	b = b[n:]
	if nf > 0 {
		r.Header = make([]Field, nf)
	}
	for i := range r.Header {
		var s [2]string
		for j := range s {
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return fp, Record{}, errCorrupt
			}
			s[j] = string(b[n : n+int(l)])
			b = b[n+int(l):]
		}
		r.Header[i] = Field{Name: s[0], Value: s[1]}
	}
	if len(b) > 0 {
		r.Body = b
	}
	return fp, r, nil
}
