package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/internal/ws"
	"github.com/tradewind/tradewind/notifier"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var jwtKey = []byte("ws-test-key-0123456789abcdef0123")

// env is one test's system: embedded NATS with the streams, the package's
// database, the outbox relay, the real token verifier and revocation store.
type env struct {
	t     *testing.T
	url   string
	nc    *nats.Conn
	js    jetstream.JetStream
	pool  *pgxpool.Pool
	relay *outbox.Relay
	rev   *auth.Revocations
	auth  ws.Authenticator
}

func newEnv(t *testing.T) *env {
	t.Helper()
	emb, nc, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	ctx, cancel := context.WithCancel(context.Background())
	relay, err := outbox.NewRelay(outbox.RelayConfig{Sweep: 50 * time.Millisecond}, pool, js, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	rev, err := auth.NewRevocations(context.Background(), js, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(jwtKey, time.Hour, rev)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: emb.URL, nc: nc, js: js, pool: pool, relay: relay, rev: rev, auth: verifierAuth{v, rev}}
}

// verifierAuth adapts the gateway's verifier and the revocation store as
// internal/app does.
type verifierAuth struct {
	v   *auth.Verifier
	rev *auth.Revocations
}

func (a verifierAuth) Revoked(ctx context.Context, sessionID string) (bool, error) {
	return a.rev.IsRevoked(ctx, sessionID)
}

func (a verifierAuth) Authenticate(ctx context.Context, token string) (ws.Principal, error) {
	c, err := a.v.Verify(ctx, token)
	if errors.Is(err, auth.ErrRevoked) {
		return ws.Principal{}, fmt.Errorf("%w: %w", ws.ErrRevoked, err)
	}
	if err != nil {
		return ws.Principal{}, err
	}
	return ws.Principal{UserID: c.Subject, Roles: []string{c.Role}, SessionID: c.ID, ExpiresAt: c.ExpiresAt}, nil
}

// user is a unique customer id for this test.
func user(t *testing.T, name string) string {
	return name + "-" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
}

func (e *env) token(userID, role string) (string, auth.Claims) {
	e.t.Helper()
	tok, c, err := auth.Issue(jwtKey, userID, role, 10*time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok, c
}

// server starts a ws.Server on its own HTTP listener (an instance); it is
// stopped when the test ends unless stop is called first.
type server struct {
	*ws.Server
	url  string
	stop func()
}

func (e *env) server(cfg ws.Config, tweak ...func(*httptest.Server)) *server {
	e.t.Helper()
	nc, _ := testenv.Connect(e.t, e.url) // an instance has its own connection
	inbox, err := ws.NewPGInbox(e.pool)
	if err != nil {
		e.t.Fatal(err)
	}
	srv, err := ws.New(cfg, nc, inbox, e.auth, slog.Default())
	if err != nil {
		e.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+ws.Path, srv)
	hs := httptest.NewUnstartedServer(mux)
	for _, f := range tweak {
		f(hs)
	}
	hs.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			hs.Close()
		}
	}
	e.t.Cleanup(stop)
	s := &server{Server: srv, url: "ws" + strings.TrimPrefix(hs.URL, "http") + ws.Path, stop: stop}
	testenv.Eventually(e.t, 5*time.Second, "ws server ready", func() bool {
		resp, err := http.Get(hs.URL + ws.Path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusServiceUnavailable
	})
	return s
}

// notify appends one notification for userID (about orderID when set)
// through the notifier, exactly as the notifier consumer does, and wakes
// the relay. It returns the notification's seq.
func (e *env) notify(userID, orderID string) int64 {
	e.t.Helper()
	return e.append(userID, orderID, false)
}

// notifyLost is notify for a notification whose live message is lost: it
// reaches the inbox, but its outbox rows are removed before commit.
func (e *env) notifyLost(userID string) int64 {
	e.t.Helper()
	return e.append(userID, "", true)
}

func (e *env) append(userID, orderID string, lose bool) int64 {
	e.t.Helper()
	ctx := context.Background()
	subject := orderID
	if subject == "" {
		subject = uuid.NewString()
	}
	cause, err := events.New(events.OrderPlacedV1, subject, map[string]any{})
	if err != nil {
		e.t.Fatal(err)
	}
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	err = notifier.Append(ctx, tx, cause, notifier.Message{UserID: userID, OrderID: orderID, Kind: "order.placed", Title: "We received your order"})
	if err != nil {
		e.t.Fatal(err)
	}
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT last_seq FROM public.notification_counters WHERE user_id = $1`, userID).Scan(&seq); err != nil {
		e.t.Fatal(err)
	}
	if lose {
		if _, err := tx.Exec(ctx, `DELETE FROM core.outbox WHERE subject LIKE 'ntf.%'`); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.relay.Wake()
	return seq
}

// client is a test WebSocket client. The frames of a batch frame are
// returned one by one, as if they had come alone; batches counts the
// batch frames received and sizes their lengths in bytes.
type client struct {
	t       *testing.T
	ws      *websocket.Conn
	pending []frame // the rest of the last batch
	batches int
	sizes   []int
}

type frame struct {
	Type     string            `json:"type"`
	Channel  string            `json:"channel"`
	Seq      int64             `json:"seq"`
	Since    int64             `json:"since"`
	Code     string            `json:"code"`
	UserID   string            `json:"user_id"`
	Event    json.RawMessage   `json:"event"`
	Messages []json.RawMessage `json:"messages"` // batch
	raw      []byte
}

func dial(t *testing.T, url string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, url, opts)
}

// connect dials and authenticates with an auth frame.
func connect(t *testing.T, url, token string) *client {
	t.Helper()
	return connectWith(t, url, map[string]any{"type": "auth", "token": token})
}

// connectBatch is connect for a client that reads batch frames.
func connectBatch(t *testing.T, url, token string) *client {
	t.Helper()
	return connectWith(t, url, map[string]any{"type": "auth", "token": token, "batch": true})
}

func connectWith(t *testing.T, url string, auth map[string]any) *client {
	t.Helper()
	c, _, err := dial(t, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	cl := &client{t: t, ws: c}
	cl.send(auth)
	if f := cl.next(); f.Type != "authenticated" {
		t.Fatalf("after auth got %s", f.raw)
	}
	return cl
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *client) subscribe(channel string, since int64) {
	c.t.Helper()
	c.send(map[string]any{"type": "subscribe", "channel": channel, "since": since})
}

// next reads one frame (10 s at most: the read deadline closes the conn).
func (c *client) next() frame {
	c.t.Helper()
	f, err := c.read(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *client) read(timeout time.Duration) (frame, error) {
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	f := c.decode(b)
	if f.Type != "batch" {
		return f, nil
	}
	c.batches++
	c.sizes = append(c.sizes, len(b))
	if len(f.Messages) < 2 {
		c.t.Fatalf("a batch of %d messages: %s", len(f.Messages), b)
	}
	for _, m := range f.Messages {
		if inner := c.decode(m); inner.Type != "notification" {
			c.t.Fatalf("batch holds a %q frame: %s", inner.Type, m)
		} else {
			c.pending = append(c.pending, inner)
		}
	}
	return c.read(timeout)
}

func (c *client) decode(b []byte) frame {
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("frame %s: %v", b, err)
	}
	f.raw = b
	return f
}

// closeCode reads until the server closes and returns its code.
func closeCode(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, _, err := c.Read(ctx)
		cancel()
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// notifications reads until n notification frames of channel arrived and
// returns their seqs in arrival order (other frames are skipped).
func (c *client) notifications(channel string, n int) []int64 {
	c.t.Helper()
	var seqs []int64
	for len(seqs) < n {
		f := c.next()
		if f.Type == "notification" && f.Channel == channel {
			seqs = append(seqs, f.Seq)
		}
	}
	return seqs
}

func wantRun(t *testing.T, got []int64, from, to int64) {
	t.Helper()
	if int64(len(got)) != to-from+1 {
		t.Fatalf("got %d seqs %v, want %d..%d", len(got), got, from, to)
	}
	for i, s := range got {
		if s != from+int64(i) {
			t.Fatalf("seq #%d is %d, want %d (all: %v)", i, s, from+int64(i), got)
		}
	}
}

// smallBuffers makes the server's sockets' send buffers tiny so that a
// client that stops reading backs up into the server's queue quickly.
func smallBuffers(hs *httptest.Server) {
	ln := hs.Listener
	hs.Listener = smallBufListener{ln}
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// smallReadBufferDialer is a client dial option with a tiny receive buffer.
func smallReadBufferDialer() *websocket.DialOptions {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}
}

// expiredToken is a well-signed token whose exp has passed.
func expiredToken(t *testing.T, userID string) string {
	t.Helper()
	now := time.Now().Unix()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": auth.Issuer, "sub": userID, "jti": "expired-1", "iat": now - 600, "exp": now - 60,
	}).SignedString(jwtKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
