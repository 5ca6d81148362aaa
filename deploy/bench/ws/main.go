// Command ws (make bench-ws) measures WebSocket fan-out: Tradewind's ws
// server and Centrifugo v6 side by side in one run, on loopback, with the
// same clients and publish schedule (`make bench-ws`).
//
// For each system and each client count it connects N clients, each
// subscribed to its personal channel and to one shared channel, measures
// the server's memory per idle connection (RSS after GC, minus the RSS
// before the clients, divided by N), then publishes at a fixed rate to the
// personal channels (round robin) and to the shared channel, and reports
// delivered messages/s, publications per WebSocket frame and
// publish-to-receive latency p50/p99. The shared rate's default offers
// more deliveries at 10,000 clients than either server delivers on two
// cores, so throughput, not the offered rate, is measured.
//
// At 1,000 clients the fixed rates saturate neither server, so the
// fixed-rate run there compares latency at equal load only; the capacity
// ramp (capacity.go, -capacity-clients) then scales the rates on the same
// connections until a step is no longer delivered completely within a
// p99 bound, and reports each server's highest sustained rate side by
// side. Every measurement also reports the server's CPU time (Tradewind's
// ws server and its NATS; Centrifugo's one process): publications
// delivered per server CPU-second compare the two servers' cost
// independently of how the shared machine divides its cores.
//
// The clients share the machine with the servers, so they do the same
// minimal work for both: read into pooled buffers, scan each frame for its
// publications' timestamps (a Tradewind batch frame and a Centrifugo frame
// both carry several). The publisher (mode "publisher") runs in a process
// of its own: in this one it would wait behind the client goroutines in
// the scheduler's queue. -profile writes CPU profiles of both servers and
// of the clients.
//
// Centrifugo is installed for the run only (`go install
// github.com/centrifugal/centrifugo/v6@v6.9.1` into a temporary GOBIN);
// nothing of it is kept. Tradewind's server runs as a child process of
// this binary (mode "tw-server") so its memory is measured alone; its
// PostgreSQL inbox is a fresh database on TEST_DATABASE_URL, and its NATS
// an embedded server without streams in another child process (mode
// "nats-server"; Centrifugo runs its in-memory engine, so neither side
// persists during the run).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/ws"
)

const (
	benchKey         = "wsbench-key-0123456789abcdef0123456"
	centrifugoModule = "github.com/centrifugal/centrifugo/v6@v6.9.1"
	sharedChannel    = "shared"
)

func main() {
	if child(os.Args[1:]) {
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

// child runs the mode a child process of the benchmark was started in
// (its NATS server, the publisher, Tradewind's ws server) and reports
// whether args named one; a child exits on error.
func child(args []string) bool {
	if len(args) > 1 && args[0] == "nats-server" {
		if err := natsServer(args[1]); err != nil {
			fmt.Fprintln(os.Stderr, "nats-server:", err)
			os.Exit(1)
		}
		return true
	}
	if len(args) > 0 && args[0] == "publisher" {
		if err := publisherMain(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "publisher:", err)
			os.Exit(1)
		}
		return true
	}
	if len(args) > 0 && args[0] == "tw-server" {
		if err := twServer(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "tw-server:", err)
			os.Exit(1)
		}
		return true
	}
	return false
}

type options struct {
	clients      []int
	personalRate int
	sharedRate   int
	duration     time.Duration
	centrifugo   string
	only         string
	profile      string // directory for CPU profiles of the servers and of the clients

	// The capacity ramp (capacity.go).
	capClients    []int
	capStep       time.Duration // publishing time per step
	capP99        time.Duration // a step passes only with p99 at or under this
	capFactor     float64       // the ramp's step, as a multiple of the rates
	capResolution float64       // the ramp ends when pass and fail are this close
	capTries      int           // tries of a rate before it counts as failed

	// database makes Tradewind's inbox database (freshDatabase when nil).
	database func() (url string, drop func(), err error)
}

// counts parses a comma-separated list of client counts.
func counts(flagName, list string) ([]int, error) {
	var ns []int
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: bad count %q", flagName, s)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

func run() error {
	var o options
	var clients, capClients string
	flag.StringVar(&clients, "clients", "1000,10000", "client counts of the fixed-rate runs (empty: none)")
	flag.IntVar(&o.personalRate, "personal-rate", 2000, "messages/s to personal channels (round robin)")
	flag.IntVar(&o.sharedRate, "shared-rate", 50, "messages/s to the shared channel (each reaches every client): high enough that at 10,000 clients throughput, not the offered rate, is measured")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "publishing time per measurement")
	flag.DurationVar(&drainLimit, "drain", drainLimit, "how long to wait for deliveries after publishing ends; what arrives later is not counted")
	flag.StringVar(&o.centrifugo, "centrifugo", "", "a centrifugo binary (default: go install "+centrifugoModule+" into a temporary GOBIN)")
	flag.StringVar(&o.only, "only", "", `run one system only: "tradewind" or "centrifugo" (no side-by-side ratio)`)
	flag.StringVar(&o.profile, "profile", "", "write CPU profiles of each server and of the benchmark's clients, taken while publishing, into this directory")
	flag.StringVar(&capClients, "capacity-clients", "1000", "client counts of the capacity ramp: the fixed rates scaled step by step up to the highest rate delivered completely (empty: none)")
	flag.DurationVar(&o.capStep, "capacity-step", 4*time.Second, "publishing time per capacity step")
	flag.DurationVar(&o.capP99, "capacity-p99", 500*time.Millisecond, "a capacity step passes when every publication is delivered and p99 is at most this")
	flag.Float64Var(&o.capFactor, "capacity-factor", 1.5, "the capacity ramp multiplies the rates by this per step until a step fails")
	flag.Float64Var(&o.capResolution, "capacity-resolution", 1.15, "then bisects until the highest passing and lowest failing rates are within this factor")
	flag.IntVar(&o.capTries, "capacity-tries", 2, "tries of a step before it counts as failed (the machine is shared)")
	flag.Parse()
	var err error
	if o.clients, err = counts("clients", clients); err != nil {
		return err
	}
	if o.capClients, err = counts("capacity-clients", capClients); err != nil {
		return err
	}
	if o.capFactor <= 1 || o.capResolution <= 1 || o.capTries < 1 {
		return errors.New("-capacity-factor and -capacity-resolution must exceed 1, -capacity-tries be at least 1")
	}
	tmp, err := os.MkdirTemp("", "tradewind-wsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.centrifugo == "" && o.only != "tradewind" {
		gobin := filepath.Join(tmp, "bin")
		fmt.Println("installing", centrifugoModule, "into a temporary GOBIN (once per run; takes a while) ...")
		cmd := exec.Command("go", "install", centrifugoModule)
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("install centrifugo: %w", err)
		}
		o.centrifugo = filepath.Join(gobin, "centrifugo")
	}

	var results []result
	var caps []*capacity
	add := func(r report) {
		if r.fixed != nil {
			results = append(results, *r.fixed)
		}
		if r.capacity != nil {
			caps = append(caps, r.capacity)
		}
	}
	all := slices.Concat(o.clients, o.capClients)
	slices.Sort(all)
	for _, n := range slices.Compact(all) {
		if o.only != "centrifugo" {
			tw, err := benchTradewind(tmp, o, n)
			if err != nil {
				return fmt.Errorf("tradewind, %d clients: %w", n, err)
			}
			add(tw)
		}
		if o.only != "tradewind" {
			cf, err := benchCentrifugo(tmp, o, n)
			if err != nil {
				return fmt.Errorf("centrifugo, %d clients: %w", n, err)
			}
			add(cf)
		}
	}
	if len(results) > 0 {
		printTable(o, results)
	}
	if len(caps) > 0 {
		printCapacity(o, caps)
	}
	return nil
}

// result is a fixed-rate run.
type result struct {
	system      string
	clients     int
	bytesPerIdl float64
	sample
}

func printTable(o options, rs []result) {
	fmt.Printf("\nWebSocket fan-out, %s per run, personal %d msg/s round robin + shared %d msg/s to every client, GOMAXPROCS=%d\n\n",
		o.duration, o.personalRate, o.sharedRate, runtime.GOMAXPROCS(0))
	fmt.Printf("| clients | system | delivered msg/s | delivered/expected | msgs/frame | p50 | p99 | dropped conns | msgs per server CPU-s | memory per idle conn |\n")
	fmt.Printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Printf("| %d | %s | %.0f | %d/%d | %.2f | %s | %s | %d | %.0f | %.1f KiB |\n", r.clients, r.system, r.rate, r.delivered, r.expected,
			float64(r.delivered)/float64(max(r.frames, 1)), r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.lost, r.perCPUSecond(), r.bytesPerIdl/1024)
	}
	for i := 0; i+1 < len(rs) && rs[i].system != rs[i+1].system; i += 2 {
		tw, cf := rs[i], rs[i+1]
		fmt.Printf("\n%d clients: Tradewind/Centrifugo msgs/s = %.2fx, p99 %s vs %s, msgs per server CPU-s %.2fx, memory/conn %.2fx\n",
			tw.clients, tw.rate/max(cf.rate, 1), tw.p99.Round(10*time.Microsecond), cf.p99.Round(10*time.Microsecond),
			tw.perCPUSecond()/max(cf.perCPUSecond(), 1), tw.bytesPerIdl/max(cf.bytesPerIdl, 1))
	}
}

// ---- the measurement, common to both systems ----

// system is what differs between Tradewind and Centrifugo.
type system interface {
	name() string
	dial(ctx context.Context, i int) (*websocket.Conn, error)
	// handshake authenticates and subscribes client i to its personal
	// channel and the shared one, reading until both are confirmed.
	handshake(ctx context.Context, c *websocket.Conn, i int) error
	// stamps calls each with the publish time (unix ns) of every
	// publication a delivered frame carries (a frame may carry several:
	// Tradewind's batch frame, Centrifugo's newline-delimited frame) and
	// returns how many it found. Both systems' frames are scanned the same
	// minimal way: find each publication's marker, then its timestamp.
	stamps(frame []byte, each func(int64)) int
	// reply answers what in a frame needs an answer (Centrifugo's pings,
	// which may share a frame with publications). Every frame is passed.
	reply(c *websocket.Conn, frame []byte)
	// publisherArgs tell a publisher child process how to reach the system
	// (see newPublisher).
	publisherArgs() []string
	rss() (int64, error)
	// pids are the processes that serve: their CPU time is the server's.
	pids() []int
	// pprofURL is the server's net/http/pprof prefix.
	pprofURL() string
}

// report is what bench measured of one system at one client count:
// the fixed-rate run when n is one of -clients, the capacity ramp when n
// is one of -capacity-clients.
type report struct {
	fixed    *result
	capacity *capacity
}

// bench connects n clients to s, measures the memory per idle connection,
// then runs the fixed-rate measurement and the capacity ramp o asks for
// at n, on the same connections.
func bench(s system, o options, n int) (report, error) {
	var rep report
	fmt.Printf("%s: %d clients ...\n", s.name(), n)
	time.Sleep(time.Second)
	base, err := s.rss()
	if err != nil {
		return rep, err
	}
	f, err := connect(s, n)
	if err != nil {
		return rep, err
	}
	defer f.close()
	time.Sleep(2 * time.Second)
	idle, err := s.rss()
	if err != nil {
		return rep, err
	}
	if slices.Contains(o.clients, n) {
		smp, err := f.run(load{o.personalRate, o.sharedRate, o.duration}, func() (func(), error) { return startProfiles(s, o, n) })
		if err != nil {
			return rep, err
		}
		rep.fixed = &result{system: s.name(), clients: n, bytesPerIdl: float64(idle-base) / float64(n), sample: smp}
	}
	if slices.Contains(o.capClients, n) {
		c, err := ramp(f, o)
		if err != nil {
			return rep, fmt.Errorf("capacity: %w", err)
		}
		rep.capacity = c
	}
	return rep, nil
}

// publisher is the publishing side of a system, in the publisher child.
type publisher interface {
	// publishPersonal publishes to client i's channel its seq'th
	// notification (Tradewind's ordered channels drop a seq already seen).
	publishPersonal(i int, seq, now int64) error
	publishShared(now int64) error
	// flush sends what publishPersonal and publishShared queued (once per
	// tick).
	flush() error
	// close waits until everything published was handed to the server.
	close() error
}

// runPublisher runs the publisher child for l to n clients, continuing
// the round robin after the before personal messages sent earlier to the
// same clients, and returns when it started (unix ns) and how many
// personal and shared messages it sent.
func runPublisher(s system, n int, l load, before int64) (start, sentP, sentS int64, err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, 0, err
	}
	args := append([]string{"publisher", strconv.Itoa(n), strconv.Itoa(l.personal), strconv.Itoa(l.shared), l.d.String(), strconv.FormatInt(before, 10)}, s.publisherArgs()...)
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("publisher child: %w", err)
	}
	if _, err := fmt.Sscan(string(out), &start, &sentP, &sentS); err != nil {
		return 0, 0, 0, fmt.Errorf("publisher child said %q: %w", out, err)
	}
	return start, sentP, sentS, nil
}

// publisherMain is the publisher child: args are clients, personal rate,
// shared rate, duration, personal messages sent before (by earlier
// children), then the system's publisherArgs. It publishes at the fixed
// rates in 1 ms ticks and prints its start time (unix ns) and the
// personal and shared counts sent. The personal round robin continues
// where the earlier children left it: the k-th personal message of the
// whole run goes to client k mod n with seq k/n + 1, so every client's
// seqs stay contiguous from phase to phase.
func publisherMain(args []string) error {
	if len(args) < 7 {
		return fmt.Errorf("want clients personal-rate shared-rate duration sent-before system target, got %q", args)
	}
	n, err1 := strconv.Atoi(args[0])
	personal, err2 := strconv.Atoi(args[1])
	shared, err3 := strconv.Atoi(args[2])
	d, err4 := time.ParseDuration(args[3])
	before, err5 := strconv.ParseInt(args[4], 10, 64)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return err
	}
	var p publisher
	switch args[5] {
	case "tradewind":
		nc, err := broker.Connect(args[6], "wsbench-publisher")
		if err != nil {
			return err
		}
		defer nc.Close()
		p = &tradewind{nc: nc}
	case "centrifugo":
		p = &centrifugo{apiURL: args[6], hc: &http.Client{}}
	default:
		return fmt.Errorf("unknown system %q", args[5])
	}
	start := time.Now()
	var sentP, sentS int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for now := range tick.C {
		el := now.Sub(start)
		if el > d {
			break
		}
		wantP := int64(el.Seconds() * float64(personal))
		for ; sentP < wantP; sentP++ {
			k := before + sentP
			if err := p.publishPersonal(int(k%int64(n)), k/int64(n)+1, time.Now().UnixNano()); err != nil {
				return err
			}
		}
		wantS := int64(el.Seconds() * float64(shared))
		for ; sentS < wantS; sentS++ {
			if err := p.publishShared(time.Now().UnixNano()); err != nil {
				return err
			}
		}
		if err := p.flush(); err != nil {
			return err
		}
	}
	if err := p.close(); err != nil {
		return err
	}
	fmt.Println(start.UnixNano(), sentP, sentS)
	return nil
}

// frames pools the readers' frame buffers.
var frames = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readFrame reads one message into a pooled buffer (frames.Put it back).
func readFrame(c *websocket.Conn) (*[]byte, error) {
	_, r, err := c.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	b := frames.Get().(*[]byte)
	buf := (*b)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			*b = buf
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// startProfiles starts, when -profile is set, a CPU profile of the server
// (through its pprof endpoint, for the publishing time) and one of this
// process (the clients and the publisher); stop ends them (idempotent).
func startProfiles(s system, o options, n int) (stop func(), err error) {
	if o.profile == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(o.profile, 0o755); err != nil {
		return nil, err
	}
	tag := fmt.Sprintf("%s-%d", strings.Fields(strings.ToLower(s.name()))[0], n)
	f, err := os.Create(filepath.Join(o.profile, "clients-"+tag+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		url := fmt.Sprintf("%s/profile?seconds=%d", s.pprofURL(), int(o.duration.Seconds()))
		resp, err := http.Get(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, "server profile:", err)
			return
		}
		defer resp.Body.Close()
		out, err := os.Create(filepath.Join(o.profile, "server-"+tag+".pprof"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "server profile:", err)
			return
		}
		defer out.Close()
		_, _ = io.Copy(out, resp.Body)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
			<-done
		})
	}, nil
}

// ---- Tradewind ----

type tradewind struct {
	url, rssURL, pprof string
	natsURL            string
	nc                 *nats.Conn
	serverPIDs         []int // the ws server and NATS
}

func benchTradewind(tmp string, o options, n int) (report, error) {
	self, err := os.Executable()
	if err != nil {
		return report{}, err
	}
	// NATS runs in a process of its own: inside this one it would share the
	// scheduler with the 10,000 client goroutines and delay every message.
	natsURL, natsPID, stopNATS, err := startNATS(self, filepath.Join(tmp, "nats"))
	if err != nil {
		return report{}, err
	}
	defer stopNATS()
	database := o.database
	if database == nil {
		database = freshDatabase
	}
	dbURL, drop, err := database()
	if err != nil {
		return report{}, err
	}
	defer drop()
	addr, err := freePort()
	if err != nil {
		return report{}, err
	}
	cmd := exec.Command(self, "tw-server", "-nats", natsURL, "-db", dbURL, "-addr", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return report{}, err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	if err := waitHTTP("http://" + addr + "/rss"); err != nil {
		return report{}, err
	}
	tw := &tradewind{url: "ws://" + addr + ws.Path, rssURL: "http://" + addr + "/rss", pprof: "http://" + addr + "/debug/pprof", natsURL: natsURL,
		serverPIDs: []int{cmd.Process.Pid, natsPID}}
	return bench(tw, o, n)
}

func (t *tradewind) name() string     { return "Tradewind" }
func (t *tradewind) pprofURL() string { return t.pprof }
func (t *tradewind) publisherArgs() []string {
	return []string{"tradewind", t.natsURL}
}

func (t *tradewind) dial(ctx context.Context, i int) (*websocket.Conn, error) {
	tok, _, err := auth.Issue([]byte(benchKey), "u"+strconv.Itoa(i), auth.RoleOps, time.Hour)
	if err != nil {
		return nil, err
	}
	c, _, err := websocket.Dial(ctx, t.url+"?batch=1&access_token="+tok, nil)
	return c, err
}

func (t *tradewind) handshake(ctx context.Context, c *websocket.Conn, _ int) error {
	for _, ch := range []string{"user", events.ChannelOpsOrders} {
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","channel":"`+ch+`","since":0}`)); err != nil {
			return err
		}
	}
	for subscribed := 0; subscribed < 2; {
		_, b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(`"type":"subscribed"`)) {
			subscribed++
		} else if bytes.Contains(b, []byte(`"type":"error"`)) {
			return fmt.Errorf("subscribe: %s", b)
		}
	}
	return nil
}

var (
	notificationKey = []byte(`{"type":"notification"`)
	timeKey         = []byte(`"time":"`)
)

// stamps finds every notification of a frame (one, or several in a batch
// frame: the marker cannot occur inside a JSON string, where quotes are
// escaped) and the CloudEvent time that follows it.
func (t *tradewind) stamps(b []byte, each func(int64)) int {
	k := 0
	for {
		i := bytes.Index(b, notificationKey)
		if i < 0 {
			return k
		}
		b = b[i+len(notificationKey):]
		j := bytes.Index(b, timeKey)
		if j < 0 {
			return k
		}
		b = b[j+len(timeKey):]
		ts, ok := parseUTC(b)
		if !ok {
			return k
		}
		each(ts)
		k++
	}
}

// parseUTC reads a UTC RFC 3339 time, 2006-01-02T15:04:05[.fraction]Z as
// the CloudEvent time attribute is written, at the start of b, as unix ns:
// digit arithmetic, which costs what Centrifugo's integer timestamp does.
func parseUTC(b []byte) (int64, bool) {
	if len(b) < 20 || b[4] != '-' || b[10] != 'T' || b[19] != '.' && b[19] != 'Z' {
		return 0, false
	}
	num := func(from, to int) int {
		v := 0
		for _, c := range b[from:to] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	ns, i := 0, 20
	if b[19] == '.' {
		scale := int(time.Second)
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			scale /= 10
			ns += int(b[i]-'0') * scale
		}
		if i >= len(b) || b[i] != 'Z' {
			return 0, false
		}
	}
	d := time.Date(num(0, 4), time.Month(num(5, 7)), num(8, 10), num(11, 13), num(14, 16), num(17, 19), ns, time.UTC)
	return d.UnixNano(), true
}

func (t *tradewind) reply(*websocket.Conn, []byte) {}

// flush: NATS publishes are buffered and flushed by the client library.
func (t *tradewind) flush() error { return nil }
func (t *tradewind) close() error { return t.nc.Flush() }

// benchOrder is the order the shared channel's notifications are about:
// the server accepts a notification on the ops feed only when it names
// an order.
const benchOrder = "0190f1d2-0000-7000-8000-000000000001"

func (t *tradewind) publish(user string, seq int64, channelSubject, orderID string, now int64) error {
	ev, err := events.New(events.NotificationV1, events.UserChannel(user), events.NotificationData{
		UserID: user, Seq: seq, Kind: "order.confirmed", Title: "Your order is confirmed", OrderID: orderID,
		Body: "Order 0190f1d2 is confirmed and will be shipped.", Source: events.NotificationCause{ID: "bench", Type: events.OrderPlacedV1},
	}, events.WithTime(time.Unix(0, now).UTC()))
	if err != nil {
		return err
	}
	m, err := cenats.NewMsg(events.NotificationPrefix+channelSubject, ev)
	if err != nil {
		return err
	}
	return t.nc.PublishMsg(m)
}

func (t *tradewind) publishPersonal(i int, seq, now int64) error {
	u := "u" + strconv.Itoa(i)
	return t.publish(u, seq, events.UserChannel(u), "", now)
}

func (t *tradewind) publishShared(now int64) error {
	return t.publish("ops", 1, events.ChannelOpsOrders, benchOrder, now)
}

func (t *tradewind) pids() []int { return t.serverPIDs }

func (t *tradewind) rss() (int64, error) {
	resp, err := http.Get(t.rssURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// startNATS runs an embedded NATS server (no streams) in a child process
// and returns its URL and process id.
func startNATS(self, dir string) (string, int, func(), error) {
	cmd := exec.Command(self, "nats-server", dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	url, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", 0, nil, fmt.Errorf("nats-server child: %w", err)
	}
	return strings.TrimSpace(url), cmd.Process.Pid, stop, nil
}

// natsServer is the NATS child process: it prints its URL, then serves
// until interrupted.
func natsServer(dir string) error {
	emb, err := broker.StartEmbedded(broker.EmbeddedConfig{Dir: dir, Port: -1})
	if err != nil {
		return err
	}
	defer emb.Shutdown()
	fmt.Println(emb.URL)
	ctx, cancel := signalContext()
	defer cancel()
	<-ctx.Done()
	return nil
}

// twServer is the child process: Tradewind's ws server alone, plus /rss.
func twServer(args []string) error {
	app.TuneGC([]string{"ws"}) // as serve runs the ws role alone
	fs := flag.NewFlagSet("tw-server", flag.ExitOnError)
	natsURL := fs.String("nats", "", "NATS URL")
	dbURL := fs.String("db", "", "PostgreSQL URL")
	addr := fs.String("addr", "", "listen address")
	_ = fs.Parse(args)
	ctx, cancel := signalContext()
	defer cancel()
	nc, err := broker.Connect(*natsURL, "wsbench-tw")
	if err != nil {
		return err
	}
	defer nc.Close()
	pool, err := store.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	inbox, err := ws.NewPGInbox(pool)
	if err != nil {
		return err
	}
	v, err := auth.NewVerifier([]byte(benchKey), 2*time.Hour, nil)
	if err != nil {
		return err
	}
	authn := benchAuth{v}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := ws.New(ws.Config{MaxConnections: 100000, MaxConnectionsPerUser: 4, MaxAuthenticatingPerIP: 100000, RevalidateEvery: -1}, nc, inbox, authn, log)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+ws.Path, srv)
	mux.HandleFunc("GET /rss", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		rss, _ := procRSS(os.Getpid())
		fmt.Fprintln(w, rss)
	})
	mux.HandleFunc("GET /heap", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		_ = pprof.Lookup("heap").WriteTo(w, 0)
	})
	mux.HandleFunc("GET /debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("GET /goroutines", func(w http.ResponseWriter, _ *http.Request) {
		_ = pprof.Lookup("goroutine").WriteTo(w, 1)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	return srv.Run(ctx)
}

// benchAuth verifies the benchmark's tokens; it revokes none (the
// benchmark's server does not revalidate).
type benchAuth struct{ v *auth.Verifier }

func (a benchAuth) Authenticate(ctx context.Context, token string) (ws.Principal, error) {
	c, err := a.v.Verify(ctx, token)
	if err != nil {
		return ws.Principal{}, err
	}
	return ws.Principal{UserID: c.Subject, Roles: []string{c.Role}, SessionID: c.ID, ExpiresAt: c.ExpiresAt}, nil
}

func (benchAuth) Revoked(context.Context, string) (bool, error) { return false, nil }

// ---- Centrifugo ----

type centrifugo struct {
	wsURL, apiURL, pprof string
	pid                  int
	hc                   *http.Client
	batch                []byte // publications of the current tick
	sends                chan []byte
	senders              sync.WaitGroup
	failed               atomic.Value
}

func benchCentrifugo(tmp string, o options, n int) (report, error) {
	addr, err := freePort()
	if err != nil {
		return report{}, err
	}
	host, port, _ := net.SplitHostPort(addr)
	cfg := map[string]any{
		"http_server": map[string]any{"address": host, "port": port},
		"client": map[string]any{
			"token":           map[string]any{"hmac_secret_key": benchKey},
			"allowed_origins": []string{"*"},
		},
		"http_api": map[string]any{"key": "bench-api-key"},
		"channel": map[string]any{
			"without_namespace": map[string]any{"allow_subscribe_for_client": true},
		},
		"health": map[string]any{"enabled": true},
		"log":    map[string]any{"level": "error"},
		"debug":  map[string]any{"enabled": true},
	}
	path := filepath.Join(tmp, "centrifugo.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return report{}, err
	}
	cmd := exec.Command(o.centrifugo, "--config", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return report{}, err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	cf := &centrifugo{
		wsURL: "ws://" + addr + "/connection/websocket", apiURL: "http://" + addr + "/api", pprof: "http://" + addr + "/debug/pprof",
		pid: cmd.Process.Pid,
	}
	if err := waitHTTP("http://" + addr + "/health"); err != nil {
		return report{}, err
	}
	return bench(cf, o, n)
}

func (c *centrifugo) name() string     { return "Centrifugo v6" }
func (c *centrifugo) pprofURL() string { return c.pprof }
func (c *centrifugo) publisherArgs() []string {
	return []string{"centrifugo", c.apiURL}
}

func (c *centrifugo) dial(ctx context.Context, _ int) (*websocket.Conn, error) {
	conn, _, err := websocket.Dial(ctx, c.wsURL, nil)
	return conn, err
}

func (c *centrifugo) handshake(ctx context.Context, conn *websocket.Conn, i int) error {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u" + strconv.Itoa(i), "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(benchKey))
	if err != nil {
		return err
	}
	cmds := fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`+"\n"+`{"id":2,"subscribe":{"channel":"u%d"}}`+"\n"+`{"id":3,"subscribe":{"channel":%q}}`, tok, i, sharedChannel)
	if err := conn.Write(ctx, websocket.MessageText, []byte(cmds)); err != nil {
		return err
	}
	for replies := 0; replies < 3; {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if bytes.Contains(line, []byte(`"error"`)) {
				return fmt.Errorf("centrifugo: %s", line)
			}
			if bytes.Contains(line, []byte(`"id":`)) {
				replies++
			}
		}
	}
	return nil
}

var (
	pubKey = []byte(`"pub"`)
	tKey   = []byte(`"t":`)
)

// stamps finds every publication of a frame: Centrifugo writes several
// replies in one frame, one per line.
func (c *centrifugo) stamps(b []byte, each func(int64)) int {
	k := 0
	for line := range bytes.Lines(b) {
		p := bytes.Index(line, pubKey)
		if p < 0 {
			continue
		}
		line = line[p:]
		i := bytes.Index(line, tKey)
		if i < 0 {
			continue
		}
		v, ok := 0, false
		for _, d := range line[i+len(tKey):] {
			if d < '0' || d > '9' {
				break
			}
			v, ok = v*10+int(d-'0'), true
		}
		if ok {
			each(int64(v))
			k++
		}
	}
	return k
}

// reply answers a server ping, an empty object on a line of its own,
// with a pong. Under load Centrifugo writes the ping in the same frame as
// publications; a client answering only frames that are a ping alone
// misses it and is disconnected after the pong timeout (the earlier
// version of this benchmark did, and lost connections at 1.2× the fixed
// rates).
func (c *centrifugo) reply(conn *websocket.Conn, b []byte) {
	for line := range bytes.Lines(b) {
		if bytes.Equal(bytes.TrimSpace(line), []byte("{}")) {
			_ = conn.Write(context.Background(), websocket.MessageText, []byte("{}"))
			return
		}
	}
}

// publish queues a publication with the same data as Tradewind's
// notification; flush sends the tick's publications in one batch request,
// so that the publisher keeps its schedule (as the NATS client's buffered
// publishes do for Tradewind).
func (c *centrifugo) publish(channel string, now int64) error {
	if len(c.batch) == 0 {
		c.batch = append(c.batch, `{"commands":[`...)
	} else {
		c.batch = append(c.batch, ',')
	}
	c.batch = fmt.Appendf(c.batch, `{"publish":{"channel":%q,"data":{"t":%d,"kind":"order.confirmed","title":"Your order is confirmed","body":"Order 0190f1d2 is confirmed and will be shipped.","links":{},"source":{"id":"bench","type":"com.tradewind.orders.placed.v1"}}}}`, channel, now)
	return nil
}

// flush hands the tick's batch to one of a few sender goroutines, so
// that, like NATS publishes, publishing does not wait for the server's
// answer and the schedule is kept when the server is slow to answer.
func (c *centrifugo) flush() error {
	if err, _ := c.failed.Load().(error); err != nil {
		return err
	}
	if len(c.batch) == 0 {
		return nil
	}
	body := append(c.batch, `]}`...)
	c.batch = nil
	if c.sends == nil {
		c.sends = make(chan []byte, 4096)
		for range 8 {
			c.senders.Add(1)
			go func() {
				defer c.senders.Done()
				for body := range c.sends {
					if err := c.post(body); err != nil {
						c.failed.CompareAndSwap(nil, err)
					}
				}
			}()
		}
	}
	c.sends <- body
	return nil
}

// close waits for the batches handed to the senders.
func (c *centrifugo) close() error {
	if c.sends != nil {
		close(c.sends)
		c.senders.Wait()
	}
	err, _ := c.failed.Load().(error)
	return err
}

// post sends one batch. A transport error is retried (for up to 10 s,
// with the one backoff): the client does not retry a POST by itself, and
// under load at 10,000 clients reusing a keep-alive connection the server
// is closing just then failed with EOF, before the request was read, more
// than once in a run. An answer that is an error is not retried.
func (c *centrifugo) post(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	return retry.Until(ctx, retry.Backoff{Base: 10 * time.Millisecond, Max: 500 * time.Millisecond}, quiet, "centrifugo publish", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL+"/batch", bytes.NewReader(body))
		req.Header.Set("X-API-Key", "bench-api-key")
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || bytes.Contains(reply, []byte(`"error"`)) {
			return retry.Permanent(fmt.Errorf("centrifugo publish: %s %.200s", resp.Status, reply))
		}
		return nil
	})
}

func (c *centrifugo) publishPersonal(i int, _, now int64) error {
	return c.publish("u"+strconv.Itoa(i), now)
}
func (c *centrifugo) publishShared(now int64) error { return c.publish(sharedChannel, now) }
func (c *centrifugo) rss() (int64, error)           { return procRSS(c.pid) }
func (c *centrifugo) pids() []int                   { return []int{c.pid} }

// ---- helpers ----

// procCPU is the CPU time (user and system) the processes have used.
func procCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// Fields after the parenthesised command name: state is the
		// 3rd field of the line, utime the 14th and stime the 15th, in
		// clock ticks (100 per second on Linux).
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: short", pid)
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return total, nil
}

func procRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitHTTP(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", url)
}

// freshDatabase creates and migrates a database on TEST_DATABASE_URL's server.
func freshDatabase() (string, func(), error) {
	server := os.Getenv("TEST_DATABASE_URL")
	if server == "" {
		server = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	name := fmt.Sprintf("tw_wsbench_%d", time.Now().UnixNano())
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, fmt.Errorf("TEST_DATABASE_URL: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = admin.Close(ctx)
		return "", nil, err
	}
	_ = admin.Close(ctx)
	u := server
	if i := strings.LastIndex(u, "/"); i > len("postgres://") {
		rest := ""
		if q := strings.Index(u[i:], "?"); q >= 0 {
			rest = u[i+q:]
		}
		u = u[:i] + "/" + name + rest
	}
	drop := func() {
		if c, err := pgx.Connect(ctx, server); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	}
	if err := store.Migrate(ctx, u); err != nil {
		drop()
		return "", nil, err
	}
	return u, drop, nil
}
