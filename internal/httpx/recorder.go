// Package httpx holds small net/http helpers shared by the middlewares.
package httpx

import (
	"bufio"
	"net"
	"net/http"
)

// Recorder is an http.ResponseWriter that remembers the first status code
// and counts the body bytes written. It unwraps (Unwrap) to the original
// writer, so http.ResponseController reaches it, and passes flushing and
// hijacking (WebSocket upgrades) through.
type Recorder struct {
	http.ResponseWriter
	code  int
	bytes int64
}

// NewRecorder wraps w.
func NewRecorder(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// WriteHeader implements http.ResponseWriter.
func (r *Recorder) WriteHeader(code int) {
	r.setCode(code)
	r.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (r *Recorder) Write(b []byte) (int, error) {
	r.setCode(http.StatusOK)
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// setCode records code unless one was recorded already.
func (r *Recorder) setCode(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// Written reports whether a status code has been sent.
func (r *Recorder) Written() bool { return r.code != 0 }

// Status is the status code sent, 200 when the handler wrote nothing.
func (r *Recorder) Status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// Bytes is the number of body bytes written.
func (r *Recorder) Bytes() int64 { return r.bytes }

// Unwrap lets http.ResponseController reach the original writer.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush supports streaming handlers that assert http.Flusher.
func (r *Recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

// Hijack supports WebSocket upgrades that assert http.Hijacker; a hijacked
// connection is recorded as 101 Switching Protocols.
func (r *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.setCode(http.StatusSwitchingProtocols)
	}
	return c, rw, err
}
