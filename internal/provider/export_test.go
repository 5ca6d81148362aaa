package provider

// Resident reports what the working set holds: authorizations,
// idempotency records, listed orders and entries (authorizations plus
// records without one).
func (s *Server) Resident() (auths, keys, orders, entries int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.auths), len(s.idem), len(s.byOrder), s.lru.Len()
}

// ResidentAuthorization reports whether authorization id is in memory.
func (s *Server) ResidentAuthorization(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.auths[id]
	return ok
}

// ResidentKey reports whether the record of an idempotency key is in memory.
func (s *Server) ResidentKey(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.idem[key]
	return ok
}
