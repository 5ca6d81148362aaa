package api

import (
	"net/http"

	"github.com/tradewind/tradewind/internal/auth"
)

// logout revokes the presented access token's session on every gateway
// and WebSocket instance (auth.Revocations). It needs no Idempotency-Key:
// revoking twice is the same as once. API keys are revoked with
// `tradewind keys revoke`, not here.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	p, ok := s.signedIn(w, r)
	if !ok {
		return
	}
	if p.Kind != auth.KindUser {
		writeProblem(w, r, problem(http.StatusBadRequest, "not-a-session", "Not a session",
			"only access tokens have sessions to log out of").header("Authorization"))
		return
	}
	if err := s.d.Sessions.Revoke(r.Context(), p.TokenID); err != nil {
		s.log.Warn("revoke session", "request_id", requestIDFrom(r.Context()), "err", err)
		writeProblem(w, r, unavailable("the session could not be revoked; retry"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
