package provider

import (
	"bytes"
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tradewind/tradewind/internal/retry"
)

// maxBody bounds a request body; the protocol's bodies are tiny.
const maxBody = 16 << 10

// JournalFile is the ledger's journal under Options.DataDir.
const JournalFile = "ledger.jsonl"

// DefaultMaxInMemory is Options.MaxInMemory when left 0.
const DefaultMaxInMemory = 50_000

// Options configure a simulator.
type Options struct {
	// DataDir holds the ledger journal; empty keeps the ledger in memory
	// only (lost with the process, and never evicted: memory-only mode
	// grows with every request, so it is for tests and short runs).
	DataDir string
	// MaxInMemory bounds the working set when a journal is open: at most
	// this many authorizations (with their per-order index entries and
	// idempotency records) and idempotency records without an
	// authorization are held in memory; the least recently touched is
	// evicted (0: DefaultMaxInMemory; ignored without a DataDir).
	MaxInMemory int
	// Faults are the initial fault settings (zero value: no faults).
	Faults Faults
	// Seed makes random declines and jitter reproducible (0: random).
	Seed uint64
	Log  *slog.Logger
}

// Server simulates a payment provider. Every state change is appended to
// a journal (one JSON line per answered request, handed to the OS before the
// answer is sent; not fsync'ed, so it survives a killed process but not a
// power loss) and replayed at start, so a killed and restarted
// simulator keeps its ledger and its idempotency records — the property a
// real provider has and the saga's exactly-once effects rely on.
//
// With a journal, memory holds a bounded working set (Options.MaxInMemory
// entries, least recently touched evicted; replay at start evicts as it
// goes) and the journal is the truth: an evicted authorization,
// idempotency record or order is read back from it when needed and
// answers exactly as if it had never left. Whether a name (key,
// authorization, order) was ever seen, and where its last line is, comes
// from an index file beside the journal (see diskIndex; rebuilt at every
// start; about 32 bytes on disk per name, nothing in memory), so a new
// Idempotency-Key or an unknown authorization costs a probe, not a scan.
//
// Costs and hazards. Every answer adds two or three index writes, and
// after the first eviction every new key a probe (page-cached reads: some
// tens of microseconds a request). Doubling the index, at each power of
// two of names, streams it under the mutex (requests wait while it is
// copied). Two rare paths scan the whole journal: listing the
// authorizations of an order not resident (under the mutex: every
// request waits), and GET /v1/ledger once anything was evicted (outside
// the mutex, holding every authorization in memory while it answers).
//
// Invariants (under mu): every resident authorization and idempotency
// record equals the journal's last line for it; byOrder has an entry for
// an order only if it lists every authorization ever made for it, all
// resident (an eviction drops the order's entry); before the first
// eviction everything is resident.
type Server struct {
	log *slog.Logger

	mu      sync.Mutex
	faults  Faults
	rnd     *mrand.Rand
	max     int                 // the working set's bound (0: unbounded)
	lru     *list.List          // of *item, most recently touched first
	auths   map[string]*item    // authorization id → its entry
	byOrder map[string][]string // order id → its authorization ids, oldest first
	idem    map[string]keyEntry // idempotency key → its first answer
	seq     uint64              // authorizations made (orders the in-memory ledger)
	evicted bool                // anything was ever evicted: misses consult the journal
	journal *os.File            // appended to under mu
	reader  *os.File            // the journal, read at offsets
	size    int64               // the journal's length: where the next line goes
	index   *diskIndex          // nil without a journal
}

// item is one entry of the working set: an authorization with the
// idempotency keys resident for it, or one key whose answer changed no
// authorization (auth nil).
type item struct {
	auth *Authorization
	seq  uint64
	keys []string
	elem *list.Element
}

// keyEntry is a resident idempotency record and the entry holding it.
type keyEntry struct {
	rec record
	it  *item
}

// record is the first answer given to an idempotency key.
type record struct {
	Hash   string          `json:"hash"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// journalLine is one answered request: its key, answer and the
// authorization as it stands afterwards (nil when none changed).
type journalLine struct {
	Key  string         `json:"key"`
	Rec  record         `json:"rec"`
	Auth *Authorization `json:"auth,omitempty"`
}

// NewServer builds a simulator, replaying the journal in opts.DataDir.
func NewServer(opts Options) (*Server, error) {
	if opts.Faults.Outage == "" {
		opts.Faults.Outage = OutageOff
	}
	if err := opts.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("payment provider: faults: %w", err)
	}
	if opts.MaxInMemory < 0 {
		return nil, fmt.Errorf("payment provider: max in memory: want 0 (default) or more, got %d", opts.MaxInMemory)
	}
	seed := opts.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	s := &Server{
		log:     opts.Log,
		faults:  opts.Faults,
		rnd:     mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		lru:     list.New(),
		auths:   map[string]*item{},
		byOrder: map[string][]string{},
		idem:    map[string]keyEntry{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if opts.DataDir != "" {
		s.max = opts.MaxInMemory
		if s.max == 0 {
			s.max = DefaultMaxInMemory
		}
		if err := s.openJournal(opts.DataDir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close closes the journal.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeJournal()
}

// Faults returns the current fault settings.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// SetFaults replaces the fault settings.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.log.Info("payment provider faults changed", "outage", f.Outage, "latency", time.Duration(f.Latency),
		"jitter", time.Duration(f.Jitter), "decline_rate", f.DeclineRate)
	return nil
}

// Ledger returns a copy of every authorization, oldest first, with
// totals. Once anything was evicted it streams the journal (see Server);
// a read error is logged and yields an empty ledger.
func (s *Server) Ledger() Ledger {
	l, err := s.ledger()
	if err != nil {
		s.log.Error("payment provider: ledger", "err", err)
		return Ledger{Authorizations: []Authorization{}, Totals: Totals{ByStatus: map[string]int{}}}
	}
	return l
}

// Authorizations returns copies of the authorizations made for an order,
// oldest first (none when the provider never saw it; a journal read error
// is logged and yields none).
func (s *Server) Authorizations(orderID string) []Authorization {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.orderAuthorizations(orderID)
	if err != nil {
		s.log.Error("payment provider: authorizations", "order_id", orderID, "err", err)
	}
	return out
}

// Handler is the simulator's HTTP API (see the package documentation).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/authorizations", s.listAuthorizations)
	mux.HandleFunc("POST /v1/authorizations", s.payment(s.authorize))
	mux.HandleFunc("POST /v1/authorizations/{id}/capture", s.payment(s.capture))
	mux.HandleFunc("POST /v1/authorizations/{id}/void", s.payment(s.void))
	mux.HandleFunc("POST /v1/authorizations/{id}/refund", s.payment(s.refund))
	mux.HandleFunc("GET /v1/ledger", s.getLedger)
	mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Faults()) })
	mux.HandleFunc("PUT /admin/faults", s.putFaults)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

func (s *Server) putFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "unreadable body", err.Error())
		return
	}
	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	// Decoding onto the current settings changes only the named fields.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid faults", err.Error())
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeProblem(w, http.StatusUnprocessableEntity, "invalid faults", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// listAuthorizations answers GET /v1/authorizations?order_id=: the
// authorizations made for the order, whatever their status. Like any
// provider API it suffers the configured latency and outages.
func (s *Server) listAuthorizations(w http.ResponseWriter, r *http.Request) {
	orderID := r.URL.Query().Get("order_id")
	if orderID == "" || len(orderID) > 255 {
		writeProblem(w, http.StatusBadRequest, "order_id required", "send ?order_id= with 1 to 255 characters")
		return
	}
	if !s.suffer(w, r) {
		return
	}
	s.mu.Lock()
	auths, err := s.orderAuthorizations(orderID)
	s.mu.Unlock()
	if err != nil {
		s.log.Error("payment provider: authorizations", "order_id", orderID, "err", err)
		writeProblem(w, http.StatusInternalServerError, "ledger unavailable", "retry later")
		return
	}
	if auths == nil {
		auths = []Authorization{}
	}
	writeJSON(w, http.StatusOK, AuthorizationList{Authorizations: auths})
}

func (s *Server) getLedger(w http.ResponseWriter, _ *http.Request) {
	l, err := s.ledger()
	if err != nil {
		s.log.Error("payment provider: ledger", "err", err)
		writeProblem(w, http.StatusInternalServerError, "ledger unavailable", "retry later")
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// suffer applies the fault settings to a request: it waits the latency,
// then answers 503 or hangs during an outage. It reports whether the
// request may go on (false: it was answered, or its client has gone).
func (s *Server) suffer(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := s.faults
	delay := time.Duration(f.Latency)
	if f.Jitter > 0 {
		delay += time.Duration(s.rnd.Int64N(int64(f.Jitter) + 1))
	}
	s.mu.Unlock()
	if !retry.Sleep(r.Context(), delay) {
		return false
	}
	switch f.Outage {
	case OutageError:
		writeProblem(w, http.StatusServiceUnavailable, "provider outage", "the payment provider is unavailable; retry later")
		return false
	case OutageTimeout:
		// Hang like a provider that lost the request, until the client
		// gives up (or a minute passes).
		if retry.Sleep(r.Context(), time.Minute) {
			writeProblem(w, http.StatusGatewayTimeout, "provider timeout", "no answer in time")
		}
		return false
	}
	return true
}

// answer is what an operation decided: a status code and a body.
type answer struct {
	status int
	body   any
	auth   *Authorization // the authorization after the change, nil if none
}

// opFunc performs one payment operation under s.mu.
type opFunc func(r *http.Request, body []byte, now time.Time) answer

// payment wraps an operation with the simulator's faults and the
// idempotency protocol.
func (s *Server) payment(op opFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeProblem(w, http.StatusRequestEntityTooLarge, "body too large or unreadable", err.Error())
			return
		}
		key := r.Header.Get(HeaderIdempotencyKey)
		if key == "" || len(key) > 255 {
			writeProblem(w, http.StatusBadRequest, "Idempotency-Key required", "send an Idempotency-Key header of 1 to 255 characters")
			return
		}
		if !s.suffer(w, r) {
			return
		}
		sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "\n" + string(body)))
		hash := hex.EncodeToString(sum[:])

		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Context().Err() != nil {
			// The client gave up (timed out, or its process died) before
			// the request began executing: nobody waits for the answer, so
			// it is not executed. One that began executing is completed and
			// journaled whether or not its answer is read: that is the lost
			// result the saga's lookups (GET /v1/authorizations) recover.
			return
		}
		rec, ok, err := s.key(key)
		if err != nil {
			s.log.Error("payment provider: idempotency record unreadable; answering 500", "err", err)
			writeProblem(w, http.StatusInternalServerError, "ledger unavailable", "retry later")
			return
		}
		if ok {
			if rec.Hash != hash {
				writeProblem(w, http.StatusUnprocessableEntity, "idempotency key reused",
					"this Idempotency-Key was used with a different request")
				return
			}
			w.Header().Set(HeaderReplayed, "true")
			writeRaw(w, rec.Status, rec.Body)
			return
		}
		a := op(r, body, time.Now().UTC())
		raw, err := json.Marshal(a.body)
		if err != nil {
			writeProblem(w, http.StatusInternalServerError, "encode answer", err.Error())
			return
		}
		if a.status == http.StatusBadRequest || a.status >= http.StatusInternalServerError {
			// Like real providers, a request that failed validation never
			// started executing, so its answer is not saved under the key;
			// nor is a failure to read the ledger (retry later).
			writeRaw(w, a.status, raw)
			return
		}
		l := journalLine{Key: key, Rec: record{Hash: hash, Status: a.status, Body: raw}, Auth: a.auth}
		off, err := s.write(l)
		if err == nil {
			err = s.record(l, off)
		}
		if err != nil {
			s.log.Error("payment provider: journal write failed; answering 500", "err", err)
			writeProblem(w, http.StatusInternalServerError, "ledger unavailable", "retry later")
			return
		}
		writeRaw(w, a.status, raw)
	}
}

func (s *Server) authorize(_ *http.Request, body []byte, now time.Time) answer {
	var req AuthorizeRequest
	if err := strictDecode(body, &req); err != nil {
		return problem(http.StatusBadRequest, "invalid request", err.Error())
	}
	if req.OrderID == "" || req.Amount <= 0 || len(req.Currency) != 3 {
		return problem(http.StatusBadRequest, "invalid request", "order_id, a positive amount and a 3-letter currency are required")
	}
	a := &Authorization{
		ID: newID("auth"), OrderID: req.OrderID, CustomerID: req.CustomerID,
		Amount: req.Amount, Currency: req.Currency, Status: StatusAuthorized,
		CreatedAt: now, UpdatedAt: now,
	}
	switch {
	case req.Amount%100 == DeclineAmountSuffix:
		a.Status, a.DeclineCode = StatusDeclined, "insufficient_funds"
	case strings.Contains(req.CustomerID, DeclineCustomerMarker):
		a.Status, a.DeclineCode = StatusDeclined, "card_declined"
	case s.faults.DeclineRate > 0 && s.rnd.Float64() < s.faults.DeclineRate:
		a.Status, a.DeclineCode = StatusDeclined, "do_not_honor"
	}
	status := http.StatusCreated
	if a.Status == StatusDeclined {
		status = http.StatusPaymentRequired
	}
	return answer{status: status, body: a, auth: a}
}

// begin starts an operation on the authorization named in the path: it
// decodes the body into req (nil: the operation takes no body, but an
// empty object is accepted) and returns a copy of the authorization to
// change, which must be in state from.
func (s *Server) begin(r *http.Request, body []byte, req any, from, op string) (*Authorization, *answer) {
	if req == nil && len(bytes.TrimSpace(body)) > 0 {
		req = &struct{}{}
	}
	if req != nil {
		if err := strictDecode(body, req); err != nil {
			p := problem(http.StatusBadRequest, "invalid request", err.Error())
			return nil, &p
		}
	}
	it, err := s.authorization(r.PathValue("id"))
	if err != nil {
		s.log.Error("payment provider: authorization unreadable; answering 500", "err", err)
		p := problem(http.StatusInternalServerError, "ledger unavailable", "retry later")
		return nil, &p
	}
	if it == nil {
		p := problem(http.StatusNotFound, "no such authorization", r.PathValue("id"))
		return nil, &p
	}
	if it.auth.Status != from {
		p := problem(http.StatusConflict, "cannot "+op, "authorization is "+it.auth.Status)
		return nil, &p
	}
	c := *it.auth
	return &c, nil
}

func (s *Server) capture(r *http.Request, body []byte, now time.Time) answer {
	var req AmountRequest
	a, p := s.begin(r, body, &req, StatusAuthorized, "capture")
	if p != nil {
		return *p
	}
	if req.Amount <= 0 || req.Amount > a.Amount {
		return problem(http.StatusUnprocessableEntity, "invalid amount", fmt.Sprintf("capture 1..%d", a.Amount))
	}
	a.Status, a.CaptureID, a.Captured, a.UpdatedAt = StatusCaptured, newID("cap"), req.Amount, now
	return answer{status: http.StatusCreated, auth: a,
		body: Operation{ID: a.CaptureID, AuthorizationID: a.ID, Status: a.Status, Amount: req.Amount, Currency: a.Currency}}
}

func (s *Server) void(r *http.Request, body []byte, now time.Time) answer {
	a, p := s.begin(r, body, nil, StatusAuthorized, "void")
	if p != nil {
		return *p
	}
	a.Status, a.VoidID, a.UpdatedAt = StatusVoided, newID("void"), now
	return answer{status: http.StatusCreated, auth: a,
		body: Operation{ID: a.VoidID, AuthorizationID: a.ID, Status: a.Status, Amount: a.Amount, Currency: a.Currency}}
}

func (s *Server) refund(r *http.Request, body []byte, now time.Time) answer {
	var req AmountRequest
	a, p := s.begin(r, body, &req, StatusCaptured, "refund")
	if p != nil {
		return *p
	}
	if req.Amount <= 0 || req.Amount > a.Captured {
		return problem(http.StatusUnprocessableEntity, "invalid amount", fmt.Sprintf("refund 1..%d", a.Captured))
	}
	a.Status, a.RefundID, a.Refunded, a.UpdatedAt = StatusRefunded, newID("ref"), req.Amount, now
	return answer{status: http.StatusCreated, auth: a,
		body: Operation{ID: a.RefundID, AuthorizationID: a.ID, Status: a.Status, Amount: req.Amount, Currency: a.Currency}}
}

func problem(status int, title, detail string) answer {
	return answer{status: status, body: Problem{Title: title, Status: status, Detail: detail}}
}

func strictDecode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "encode answer", err.Error())
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	ct := "application/json"
	if status >= 400 && status != http.StatusPaymentRequired {
		ct = "application/problem+json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	b, _ := json.Marshal(Problem{Title: title, Status: status, Detail: detail})
	writeRaw(w, status, b)
}
