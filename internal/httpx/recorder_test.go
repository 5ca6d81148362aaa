package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tradewind/tradewind/internal/httpx"
)

func TestRecorderKeepsTheFirstStatusAndCountsBytes(t *testing.T) {
	tests := []struct {
		name     string
		handler  func(w http.ResponseWriter)
		status   int
		written  bool
		bytes    int64
		sentCode int
	}{
		{"nothing written reads as 200", func(http.ResponseWriter) {}, 200, false, 0, 200},
		{"a body implies 200", func(w http.ResponseWriter) { _, _ = w.Write([]byte("hello")) }, 200, true, 5, 200},
		{"the first status wins", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusTeapot)
			_, _ = w.Write([]byte("{}"))
		}, 202, true, 2, 202},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			rec := httpx.NewRecorder(w)
			tc.handler(rec)
			if rec.Status() != tc.status || rec.Written() != tc.written || rec.Bytes() != tc.bytes || w.Code != tc.sentCode {
				t.Fatalf("status %d written %v bytes %d sent %d; want %d %v %d %d",
					rec.Status(), rec.Written(), rec.Bytes(), w.Code, tc.status, tc.written, tc.bytes, tc.sentCode)
			}
			if http.NewResponseController(rec).Flush() != nil {
				t.Fatal("flush did not reach the original writer")
			}
		})
	}
}
