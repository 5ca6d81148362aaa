package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ProblemBase prefixes every problem type URI; docs/openapi documents each.
const ProblemBase = "https://tradewind.dev/problems/"

// Problem is an RFC 9457 problem details object. Field (a JSON pointer
// into the request body) or Header names what the client got wrong.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Field     string `json:"field,omitempty"`
	In        string `json:"in,omitempty"` // "body", "path" or "header"
	Header    string `json:"header,omitempty"`
	// Versions lists supported schema versions (unsupported-version).
	Versions []int `json:"versions,omitempty"`

	retryAfter int    // seconds; sets Retry-After when > 0
	authError  string // sets WWW-Authenticate error= when non-empty
}

func problem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemBase + slug, Title: title, Status: status, Detail: detail}
}

func (p *Problem) field(pointer, in string) *Problem { p.Field, p.In = pointer, in; return p }
func (p *Problem) header(name string) *Problem       { p.Header, p.In = name, "header"; return p }
func (p *Problem) retry(seconds int) *Problem        { p.retryAfter = seconds; return p }

// writeProblem answers with a problem document.
func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	p.Instance = r.URL.Path
	p.RequestID = requestIDFrom(r.Context())
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if p.Status == http.StatusUnauthorized {
		v := `Bearer realm="tradewind"`
		if p.authError != "" {
			v += `, error="` + p.authError + `"`
		}
		h.Set("WWW-Authenticate", v)
	}
	b, _ := json.Marshal(p)
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
}
