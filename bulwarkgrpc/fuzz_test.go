package bulwarkgrpc

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
)

func FuzzPushback(f *testing.F) {
	for _, s := range []string{"0", "1500", "-1", "", "soon", "9223372036854775807", "+5", " 5", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err, ok := classify(status.Error(codes.Unavailable, "x"), metadata.Pairs(MetadataPushback, s))
		if !ok || !errors.Is(err, bulwark.ErrRemoteUnavailable) || status.Code(err) != codes.Unavailable {
			t.Fatalf("classify(%q) = %v, %t, want a RemoteError for UNAVAILABLE", s, err, ok)
		}
		ms, perr := strconv.ParseInt(s, 10, 64)
		wantRetry := perr == nil && ms >= 0
		retry, ok := bulwark.Retryable(err)
		if !ok || retry != wantRetry {
			t.Fatalf("pushback %q: Retryable() = %t, %t, want %t", s, retry, ok, wantRetry)
		}
		hint, _ := bulwark.RetryAfter(err)
		if hint < 0 || !wantRetry && hint != 0 {
			t.Fatalf("pushback %q: RetryAfter = %v, want ≥ 0, and 0 when not retryable", s, hint)
		}
		if wantRetry && ms < 1<<40 && hint != time.Duration(ms)*time.Millisecond {
			t.Fatalf("pushback %q: RetryAfter = %v, want %d ms", s, hint, ms)
		}
		// An unclassified code carries the same pushback.
		other, ok := classify(status.Error(codes.Internal, "x"), metadata.Pairs(MetadataPushback, s))
		if ok || status.Code(other) != codes.Internal {
			t.Fatalf("classify(INTERNAL, %q) = %v, %t, want INTERNAL unclassified", s, other, ok)
		}
		if r, ok := bulwark.Retryable(other); !ok || r != wantRetry {
			t.Fatalf("INTERNAL, pushback %q: Retryable() = %t, %t, want %t", s, r, ok, wantRetry)
		}
		if h, _ := bulwark.RetryAfter(other); h != hint {
			t.Fatalf("INTERNAL, pushback %q: RetryAfter = %v, want %v", s, h, hint)
		}
	})
}

func FuzzServerPriority(f *testing.F) {
	for _, s := range []string{"critical-plus", "CRITICAL_PLUS", "critical", "sheddable", "sheddable_plus", "", "x"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, v string, trusted bool) {
		s := &server{o: newOptions([]Option{WithTrustPriority(func(context.Context) bool { return trusted })})}
		ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{MetadataPriority: {v}})
		got, _, _ := s.metadataTier(ctx)
		want, err := bulwark.ParsePriority(v)
		switch {
		case err != nil:
			want = bulwark.Critical
		case want == bulwark.CriticalPlus && !trusted:
			want = bulwark.Critical
		}
		if got != want {
			t.Fatalf("priority(%q, trusted %t) = %v, want %v", v, trusted, got, want)
		}
	})
}

// FuzzPushbackValue: a positive hint is sent as a non-negative pushback of
// at least the hint, whatever its size, and it parses back.
func FuzzPushbackValue(f *testing.F) {
	for _, d := range []int64{1, 999_999, 1_000_000, 1<<63 - 1, 1<<63 - 1_000_000} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d int64) {
		if d <= 0 {
			return
		}
		v := pushbackValue(time.Duration(d))
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			t.Fatalf("pushbackValue(%d) = %q", d, v)
		}
		if ms < d/1e6 || (d%1e6 != 0 && ms < d/1e6+1) {
			t.Fatalf("pushbackValue(%d) = %d ms, less than the hint", d, ms)
		}
		if hint, retry := parsePushback(v); !retry || hint <= 0 {
			t.Fatalf("parsePushback(%q) = %v, %v", v, hint, retry)
		}
	})
}

// FuzzMarker: validMarker accepts exactly 1 to 64 visible ASCII bytes.
func FuzzMarker(f *testing.F) {
	for _, s := range []string{"", "game-day", "a b", "\x7f", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) >= 1 && len(s) <= 64
		for i := 0; i < len(s); i++ {
			if s[i] < 0x21 || s[i] > 0x7e {
				want = false
			}
		}
		if got := validMarker(s); got != want {
			t.Fatalf("validMarker(%q) = %v, want %v", s, got, want)
		}
	})
}
