package readapi

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// problem is an RFC 9457 problem details object. It doubles as an error
// that route handlers return.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Param    string `json:"param,omitempty"`
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

func badRequest(param, detail string) problem {
	return problem{Status: http.StatusBadRequest, Title: "invalid parameter", Param: param, Detail: param + ": " + detail}
}

func errBadRequest(param, detail string) error {
	p := badRequest(param, detail)
	return &p
}

func errNotFound(what string) error {
	return &problem{Status: http.StatusNotFound, Title: "not found", Detail: what + " not found"}
}

func errForbidden() error {
	return &problem{Status: http.StatusForbidden, Title: "forbidden", Detail: "the caller may not read this resource"}
}

func writeProblem(w http.ResponseWriter, r *http.Request, p problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
