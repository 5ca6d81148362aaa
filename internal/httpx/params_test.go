package httpx_test

import (
	"testing"

	"github.com/tradewind/tradewind/internal/httpx"
)

func TestParseUUIDAcceptsOnlyTheCanonicalForm(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"0190a3c2-7c1e-7000-8000-000000000001", true},
		{"0190A3C2-7C1E-7000-8000-000000000001", true},
		{"urn:uuid:0190a3c2-7c1e-7000-8000-000000000001", false},
		{"{0190a3c2-7c1e-7000-8000-000000000001}", false},
		{"0190a3c27c1e70008000000000000001", false},
		{"0190a3c2-7c1e-7000-8000-00000000000\x00", false},
		{"", false},
	}
	for _, tt := range tests {
		if _, err := httpx.ParseUUID(tt.in); (err == nil) != tt.ok {
			t.Errorf("ParseUUID(%q) error = %v, want ok = %v", tt.in, err, tt.ok)
		}
	}
}

func TestHasControlFindsNULAndOtherControls(t *testing.T) {
	for s, want := range map[string]bool{
		"SKU-1": false, "café ☕": false, "": false,
		"SKU-1\x00": true, "a\nb": true, "a\tb": true, "\x7f": true, "a\u0085b": true,
	} {
		if got := httpx.HasControl(s); got != want {
			t.Errorf("HasControl(%q) = %v, want %v", s, got, want)
		}
	}
}
