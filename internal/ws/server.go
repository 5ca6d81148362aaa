// Package ws is Tradewind's WebSocket fan-out: browsers connect to
// GET /v1/ws, authenticate, subscribe to channels with the last seq they
// saw, and receive the missed notifications from the inbox (backfill) and
// then live ones from NATS, with no gap and no duplicate at the seam.
// The protocol and its close codes are documented in docs/websocket.md.
//
// Each instance holds one core NATS subscription on ntf.> (see hub) and
// delivers to its own connections only; instances share nothing but NATS
// and PostgreSQL, so any number of them can run side by side.
package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/metrics"
)

// Path is the endpoint's route.
const Path = "/v1/ws"

// Config tunes the server; zero values take the defaults noted.
type Config struct {
	// OriginPatterns are the Origin hosts allowed besides the server's own
	// host (path.Match patterns, e.g. "shop.example.com", "*.example.com").
	// Requests without Origin (non-browser clients) are allowed.
	OriginPatterns []string
	// AuthTimeout is how long a client has to send its auth frame (5s).
	AuthTimeout time.Duration
	// PingInterval between server pings (25s); PongTimeout to answer (10s).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// QueueSize bounds a connection's send queue, in frames (256). Memory
	// per connection is at most QueueSize frames.
	QueueSize int
	// MaxConnections on this instance (10000); MaxConnectionsPerUser (16).
	MaxConnections        int
	MaxConnectionsPerUser int
	// MaxAuthenticatingPerIP bounds the connections one remote IP holds
	// open before they authenticate (64; more get 429 before the upgrade).
	// Unauthenticated sockets count against MaxConnections too, so without
	// it one client could fill the instance with sockets that never send
	// a token, each held for AuthTimeout.
	MaxAuthenticatingPerIP int
	// MaxSubscriptions per connection (16).
	MaxSubscriptions int
	// MaxFrameBytes bounds a client frame (4096 bytes; larger closes 1009).
	MaxFrameBytes int64
	// BackfillPage is how many inbox rows one backfill query reads (500).
	BackfillPage int
	// RevalidateEvery re-checks every connection's session (revocation)
	// this often (30s); negative disables it.
	RevalidateEvery time.Duration
	// ShutdownGrace bounds the wait for connections to close at shutdown (5s).
	ShutdownGrace time.Duration
	// WriteConcurrency is how many connections write at once (2 per CPU,
	// at least 4): the number of writer goroutines; the others wait in
	// line while their notifications pile up, to be written together. See
	// conn.round. Measured at 10,000
	// clients on 2 CPUs (make bench-ws): 4 writers delivered 494k msg/s with
	// 11 notifications per frame, 8 writers 373k, 16 writers 136k (1.7 per
	// frame: each write carried too little); 2 writers as many as 4, at a
	// longer p99. Hazard: a writer is also held during a backfill's reads.
	WriteConcurrency int
	// WriteTimeout bounds one frame write (10s, checked every second); a
	// client that does not accept it is disconnected and resumes with since.
	WriteTimeout time.Duration
}

func (c *Config) setDefaults() {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	defInt := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&c.AuthTimeout, 5*time.Second)
	def(&c.PingInterval, 25*time.Second)
	def(&c.PongTimeout, 10*time.Second)
	def(&c.RevalidateEvery, 30*time.Second)
	def(&c.ShutdownGrace, 5*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	defInt(&c.WriteConcurrency, max(4, 2*runtime.GOMAXPROCS(0)))
	defInt(&c.QueueSize, 256)
	defInt(&c.MaxConnections, 10000)
	defInt(&c.MaxConnectionsPerUser, 16)
	defInt(&c.MaxAuthenticatingPerIP, 64)
	defInt(&c.MaxSubscriptions, 16)
	defInt(&c.BackfillPage, 500)
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 4096
	}
}

// Server is the WebSocket endpoint and the instance's NATS fan-out. It is
// an http.Handler (mount it at Path) and a service (Run).
type Server struct {
	cfg   Config
	nc    *nats.Conn
	inbox inbox
	auth  Authenticator
	log   *slog.Logger
	hub   *hub

	// writable is the line of connections with something to write, in
	// the order they got it; WriteConcurrency writers take from it (see
	// conn.round). A connection is in it at most once (queue.writing).
	writable chan *conn
	tick     atomic.Int64 // seconds since Run began, from 1: a cheap clock for write stamps

	ready   atomic.Bool // subscribed to ntf.>
	closing atomic.Bool // shutting down: no new connections
	open    atomic.Int64
	wg      sync.WaitGroup // connection handlers

	pendingMu sync.Mutex
	pending   map[string]int // remote IP -> connections not yet authenticated
}

var _ http.Handler = (*Server)(nil)

// New validates the dependencies and builds a server; it serves nothing
// until Run has subscribed to NATS.
func New(cfg Config, nc *nats.Conn, in *PGInbox, auth Authenticator, log *slog.Logger) (*Server, error) {
	var errs []error
	if nc == nil {
		errs = append(errs, errors.New("NATS connection is required"))
	}
	if in == nil {
		errs = append(errs, errors.New("inbox is required"))
	}
	if auth == nil {
		errs = append(errs, errors.New("authenticator is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ws server: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	cfg.setDefaults()
	log = log.With("component", "ws")
	return &Server{cfg: cfg, nc: nc, inbox: in, auth: auth, log: log, hub: newHub(log),
		writable: make(chan *conn, cfg.MaxConnections)}, nil
}

// Name implements the app's Service.
func (s *Server) Name() string { return "ws" }

// Connections is the number of connections this instance counts
// against MaxConnections: open ones and those still authenticating.
func (s *Server) Connections() int { return int(s.open.Load()) }

// Run subscribes to ntf.> and serves until ctx ends; then it stops
// accepting, closes every connection with CloseRestart so clients
// reconnect elsewhere, and waits (ShutdownGrace at most) for them.
//
// Why a core subscription and not an ordered consumer: the inbox in
// PostgreSQL, not the stream, is the history clients resume from, so the
// live path only needs to be fast; a core subscription costs the server
// nothing per instance and adds no hop. What it may lose (a NATS
// reconnect, the client library dropping messages for a slow handler) is
// detected — a jump in a user's seq, or the dropped/reconnect counters
// polled below — and filled from the inbox.
func (s *Server) Run(ctx context.Context) error {
	sub, err := s.nc.Subscribe(events.NotificationPrefix+">", s.hub.dispatch)
	if err != nil {
		return fmt.Errorf("ws: subscribe ntf.>: %w", err)
	}
	if err := sub.SetPendingLimits(1<<20, 256<<20); err != nil {
		return fmt.Errorf("ws: pending limits: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("ws: subscribe ntf.>: %w", err)
	}
	s.tick.Store(1)
	for range s.cfg.WriteConcurrency {
		go s.writer(ctx)
	}
	s.ready.Store(true)
	s.log.Info("WebSocket fan-out ready", "path", Path)

	monitor := time.NewTicker(time.Second)
	defer monitor.Stop()
	var revalidate <-chan time.Time
	if s.cfg.RevalidateEvery > 0 {
		t := time.NewTicker(s.cfg.RevalidateEvery)
		defer t.Stop()
		revalidate = t.C
	}
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	reconnects := s.nc.Stats().Reconnects
	dropped, _ := sub.Dropped()
	for {
		select {
		case <-ctx.Done():
			s.shutdown()
			return nil
		case <-monitor.C:
			s.watchdog()
			r := s.nc.Stats().Reconnects
			d, _ := sub.Dropped()
			if r != reconnects || d != dropped {
				s.log.Warn("live notifications may have been lost; resyncing every subscription from the inbox",
					"reconnects", r-reconnects, "dropped", d-dropped)
				reconnects, dropped = r, d
				s.Resync()
			}
		case <-revalidate:
			s.revalidate(ctx)
		case <-ping.C:
			s.heartbeat()
		}
	}
}

// writer writes for every connection: it takes the one that has waited
// longest, runs its round, and puts it back at the end of the line when
// more came meanwhile.
func (s *Server) writer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-s.writable:
			if c.round() {
				s.enqueue(c)
			}
		}
	}
}

// enqueue puts c in line for a writer without ever blocking the hub. The
// line holds MaxConnections; only connections that ended while in it can
// make it overflow, and then a goroutine waits for room.
func (s *Server) enqueue(c *conn) {
	select {
	case s.writable <- c:
	default:
		go func() { s.writable <- c }()
	}
}

// watchdog advances the write clock, drops every connection whose write
// has been blocked for WriteTimeout (it would otherwise hold one of the
// writers, which all connections share, indefinitely), and closes those
// whose token has expired (a scan each second instead of a timer per
// connection: ~110 bytes each).
func (s *Server) watchdog() {
	now := s.tick.Add(1)
	limit := now - int64((s.cfg.WriteTimeout+time.Second-1)/time.Second)
	wall := time.Now()
	for _, c := range s.hub.connections() {
		if !c.p.ExpiresAt.IsZero() && !wall.Before(c.p.ExpiresAt) {
			c.closeWith(CloseAuthFailed, "token expired")
		}
		if c.stuck(limit) {
			c.logger().Info("dropping a connection whose write is blocked", "timeout", s.cfg.WriteTimeout)
			_ = c.ws.CloseNow()
		}
	}
}

// heartbeat queues a ping to every connection; one whose pong has not
// arrived PongTimeout later is dropped (pongs are recorded by its feed).
// Pings go through the send queue like every frame, so a writer writes
// them (watched by the watchdog), and an idle connection costs no
// goroutine for its heartbeat.
func (s *Server) heartbeat() {
	at := s.tick.Load()
	conns := s.hub.connections()
	for _, c := range conns {
		c.push(item{kind: itemControl, frame: pingFrame})
	}
	time.AfterFunc(s.cfg.PongTimeout, func() {
		for _, c := range conns {
			if c.pongAt.Load() < at && !c.dead.Load() {
				// A peer that does not answer gets no close frame: it would not read it.
				_ = c.ws.CloseNow()
			}
		}
	})
}

// Resync makes every connection re-read its subscriptions from the inbox
// after its last seq (what a client would get by reconnecting).
func (s *Server) Resync() {
	for _, c := range s.hub.connections() {
		c.push(item{kind: itemResync})
	}
}

func (s *Server) revalidate(ctx context.Context) {
	for _, c := range s.hub.connections() {
		if c.p.SessionID == "" {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		revoked, err := s.auth.Revoked(actx, c.p.SessionID)
		cancel()
		// Only a revocation closes: a store that cannot answer now must not
		// disconnect everyone (expiry is the watchdog's).
		if err == nil && revoked {
			c.closeWith(CloseRevoked, "session revoked")
		}
	}
}

// Revoke closes, with CloseRevoked, every connection of a session (feed it
// the revocation store's watch so that logout disconnects at once; the
// periodic revalidation is the safety net).
func (s *Server) Revoke(sessionID string) {
	if sessionID == "" {
		return
	}
	for _, c := range s.hub.connections() {
		if c.p.SessionID == sessionID {
			c.closeWith(CloseRevoked, "session revoked")
		}
	}
}

func (s *Server) shutdown() {
	s.closing.Store(true)
	s.ready.Store(false)
	for _, c := range s.hub.connections() {
		c.closeWith(CloseRestart, "server restart: reconnect with since")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownGrace):
		for _, c := range s.hub.connections() {
			_ = c.ws.CloseNow()
		}
	}
	s.log.Info("WebSocket fan-out stopped")
}

// ServeHTTP upgrades GET /v1/ws and hands the connection to its feed.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip, ok := s.admit(w, r)
	if !ok {
		return
	}
	sw := &slimWriter{ResponseWriter: w}
	if !s.accept(sw, r, ip) {
		if sw.feed != nil {
			sw.feed.stop()
		}
		s.open.Add(-1)
		s.wg.Done()
	}
}

// admit answers with an HTTP error when the server is not ready, when
// ip already holds MaxAuthenticatingPerIP sockets that have not
// authenticated, or when the instance holds MaxConnections; otherwise it
// counts the connection (s.open, s.wg, and one of ip's authenticating
// slots, which accept gives back).
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (ip string, ok bool) {
	if s.closing.Load() || !s.ready.Load() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "WebSocket service restarting or not ready", http.StatusServiceUnavailable)
		return "", false
	}
	ip = remoteIP(r)
	if !s.beginAuth(ip) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many WebSocket connections authenticating from this address", http.StatusTooManyRequests)
		return "", false
	}
	if n := s.open.Add(1); n > int64(s.cfg.MaxConnections) {
		s.open.Add(-1)
		s.endAuth(ip)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many WebSocket connections on this instance", http.StatusServiceUnavailable)
		return "", false
	}
	s.wg.Add(1)
	return ip, true
}

// accept upgrades, authenticates and registers the connection and arms
// its feed; false means the connection was not handed over (the caller
// gives back what admit counted). The HTTP handler then returns,
// releasing its deep stack and the request: the feed's pump reads, and
// the connection ends (conn.ended) when the pump and readMessages have
// both ended. An idle connection costs the pump, its buffers and its
// state.
func (s *Server) accept(sw *slimWriter, r *http.Request, ip string) (handedOff bool) {
	authenticating := true
	defer func() {
		if authenticating {
			s.endAuth(ip)
		}
	}()
	ws, err := websocket.Accept(sw, r, &websocket.AcceptOptions{
		OriginPatterns:  s.cfg.OriginPatterns,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return false // Accept has answered (403 for a foreign origin, 426, ...)
	}
	ws.SetReadLimit(s.cfg.MaxFrameBytes)
	metrics.WSConnections.Inc()
	defer func() {
		if !handedOff {
			metrics.WSConnections.Dec()
		}
	}()

	// Reads use a context without Done: a deadline would drop the TCP
	// connection without a close frame; timers close with a code instead.
	p, batch, read, err := s.authenticate(context.Background(), ws, r)
	s.endAuth(ip)
	authenticating = false
	if err != nil {
		code := CloseAuthFailed
		if errors.Is(err, ErrRevoked) {
			code = CloseRevoked
		}
		_ = ws.Close(code, truncate(err.Error(), 120))
		return false
	}
	c := &sw.mem.c
	*c = conn{
		s: s, ws: ws, sink: sw.sink, feed: sw.feed, p: p, batch: batch,
		q: queue{max: s.cfg.QueueSize},
	}
	if !s.hub.addConn(c, s.cfg.MaxConnectionsPerUser) {
		_ = ws.Close(CloseTooManyConnections, "too many connections for this user: "+strconv.Itoa(s.cfg.MaxConnectionsPerUser))
		return false
	}
	if s.closing.Load() { // shutdown began while this one authenticated
		c.end()
		_ = ws.Close(CloseRestart, "server restart: reconnect with since")
		return false
	}
	// The first frame, through the queue like every other: nothing can be
	// queued before it (a notification needs a subscription, which needs
	// the feed armed below; a resync of no subscription writes nothing).
	c.reply(authenticatedFrame{Type: "authenticated", UserID: p.UserID})
	if !sw.feed.arm(read, c) { // from now on the feed calls c.ended
		c.end() // the socket is gone already
		return false
	}
	return true
}

// remoteIP is the connection's remote address without the port
// (forwarding headers are not trusted: anyone can send them).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// beginAuth counts a connection of ip that is authenticating; false when
// ip already holds MaxAuthenticatingPerIP of them.
func (s *Server) beginAuth(ip string) bool {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pending == nil {
		s.pending = map[string]int{}
	}
	if s.pending[ip] >= s.cfg.MaxAuthenticatingPerIP {
		return false
	}
	s.pending[ip]++
	return true
}

// endAuth ends what beginAuth counted.
func (s *Server) endAuth(ip string) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pending[ip]--; s.pending[ip] <= 0 {
		delete(s.pending, ip)
	}
}

// Authenticating is the number of connections not yet authenticated.
func (s *Server) Authenticating() int {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	n := 0
	for _, c := range s.pending {
		n += c
	}
	return n
}

// authenticate takes the token from the access_token query parameter or
// from the first frame, which must arrive within AuthTimeout. batch is
// whether the client reads batch frames ("batch":true in the auth frame,
// or batch=1 beside access_token); clients that do not say so never get
// one, so a client written before batches existed loses nothing.
func (s *Server) authenticate(ctx context.Context, ws *websocket.Conn, r *http.Request) (p Principal, batch bool, read int, err error) {
	q := r.URL.Query()
	token := q.Get("access_token")
	batch = q.Get("batch") == "1"
	if token == "" {
		read = 1
		// A read deadline would drop the TCP connection without a close
		// frame; the timer closes with CloseAuthFailed instead.
		timer := time.AfterFunc(s.cfg.AuthTimeout, func() { _ = ws.Close(CloseAuthFailed, "no auth frame in time") })
		_, data, err := ws.Read(ctx)
		if !timer.Stop() {
			return Principal{}, false, read, errors.New("no auth frame in time")
		}
		if err != nil {
			return Principal{}, false, read, fmt.Errorf("read auth frame: %w", err)
		}
		var in inbound
		if err := json.Unmarshal(data, &in); err != nil || in.Type != "auth" || in.Token == "" {
			return Principal{}, false, read, errors.New(`first frame must be {"type":"auth","token":"..."}`)
		}
		token, batch = in.Token, in.Batch
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err = s.auth.Authenticate(actx, token)
	if err != nil {
		if errors.Is(err, ErrRevoked) {
			return Principal{}, false, read, fmt.Errorf("%w", ErrRevoked)
		}
		return Principal{}, false, read, errors.New("invalid or expired token")
	}
	if p.UserID == "" {
		return Principal{}, false, read, errors.New("token names no user")
	}
	if !p.ExpiresAt.IsZero() && !p.ExpiresAt.After(time.Now()) {
		return Principal{}, false, read, errors.New("token expired")
	}
	return p, batch, read, nil
}

// authorizeOrder checks that user owns the order.
func (s *Server) authorizeOrder(ctx context.Context, orderID, user string) error {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	owner, ok, err := s.inbox.OrderOwner(qctx, orderID)
	if err != nil {
		return err
	}
	if !ok || owner != user {
		// One answer for "not yours" and "no such order": no existence leak.
		return fmt.Errorf("%w: order %s is not one of yours", errForbidden, orderID)
	}
	return nil
}
