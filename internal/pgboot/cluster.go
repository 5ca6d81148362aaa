package pgboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/retry"
)

const (
	clusterSubdir  = "postgres"       // DataDir/postgres
	portFileName   = "tradewind.port" // remembers the port across restarts
	logFileName    = "tradewind.log"  // the server's log
	superuser      = "tradewind"      // initdb -U
	runAsUserName  = "postgres"       // OS user for initdb/pg_ctl when we are root
	firstPort      = 5433
	lastPort       = 5532
	startTimeout   = 60 * time.Second
	readyTimeout   = 30 * time.Second
	maxSocketPath  = 100 // sun_path is 108 bytes on Linux, 104 on BSDs
	socketBaseName = ".s.PGSQL.65535"
)

// binDirCandidates returns the directories that may hold initdb and pg_ctl,
// in order of preference. Tests replace it to hide the binaries.
var binDirCandidates = defaultBinDirCandidates

// defaultBinDirCandidates: initdb/pg_ctl on PATH first, then
// /usr/lib/postgresql/*/bin (Debian, Ubuntu) and /usr/pgsql-*/bin (RHEL),
// newest version first, then /usr/local/pgsql/bin (source installs).
func defaultBinDirCandidates() []string {
	var dirs []string
	for _, name := range []string{"initdb", "pg_ctl"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		// Prefer the directory the PATH entry links to: pg_ctl looks for
		// the postgres executable next to itself.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"} {
		matches, _ := filepath.Glob(pattern)
		slices.SortFunc(matches, func(a, b string) int { return versionInPath(b) - versionInPath(a) })
		dirs = append(dirs, matches...)
	}
	return append(dirs, "/usr/local/pgsql/bin")
}

var pathVersionRE = regexp.MustCompile(`(?:postgresql/|pgsql-)(\d+)`)

func versionInPath(p string) int {
	m := pathVersionRE.FindStringSubmatch(p)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// binaries is one installation of PostgreSQL's server binaries.
type binaries struct {
	dir    string
	initdb string
	pgCtl  string
	major  int // from pg_ctl --version; 0 if unknown
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)`)

// findBinaries returns the usable installations in order of preference and
// the directories it looked in.
func findBinaries(ctx context.Context) ([]binaries, []string) {
	var (
		found []binaries
		tried []string
		seen  = map[string]bool{}
	)
	for _, dir := range binDirCandidates() {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		tried = append(tried, dir)
		b := binaries{dir: dir, initdb: filepath.Join(dir, "initdb"), pgCtl: filepath.Join(dir, "pg_ctl")}
		if !isExecutable(b.initdb) || !isExecutable(b.pgCtl) {
			continue
		}
		// The same installation reached through a symlinked directory.
		if real, err := filepath.EvalSymlinks(b.pgCtl); err == nil {
			if seen["pg_ctl:"+real] {
				continue
			}
			seen["pg_ctl:"+real] = true
		}
		// --version is answered before pg_ctl's "cannot be run as root"
		// check, so this works for root too.
		vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(vctx, b.pgCtl, "--version").Output()
		cancel()
		if err == nil {
			if m := versionRE.FindSubmatch(out); m != nil {
				b.major, _ = strconv.Atoi(string(m[1]))
			}
		}
		found = append(found, b)
	}
	return found, tried
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// osUser is the non-root OS user initdb and pg_ctl run as when we are root.
type osUser struct {
	name     string
	uid, gid uint32
}

func lookupRunAsUser() (*osUser, error) {
	u, err := user.Lookup(runAsUserName)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("user %s has uid 0", u.Username)
	}
	return &osUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// cluster is a throwaway cluster in DataDir/postgres.
type cluster struct {
	dir   string
	bins  binaries
	runAs *osUser // nil: run as ourselves
	log   *slog.Logger
}

func startCluster(ctx context.Context, o Options, all []binaries) (*Result, error) {
	if o.DataDir == "" {
		return nil, errors.New("no data directory configured (Options.DataDir is empty)")
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %q: %w", o.DataDir, err)
	}
	c := &cluster{dir: filepath.Join(dataDir, clusterSubdir), log: o.Logger}

	if isRoot() {
		c.runAs, err = lookupRunAsUser()
		if err != nil {
			return nil, fmt.Errorf("running as root, but PostgreSQL's initdb and postgres refuse to run as root "+
				"and no non-root OS user %q exists to run them as (%v); create one (e.g. `useradd --system --create-home %s`), "+
				"run Tradewind as a non-root user, set DATABASE_URL, or run a PostgreSQL server on localhost:5432",
				runAsUserName, err, runAsUserName)
		}
	}

	major, err := c.initialisedVersion()
	if err != nil {
		return nil, err
	}
	c.bins, err = pickBinaries(all, major, c.dir)
	if err != nil {
		return nil, err
	}
	if err := c.prepareDir(dataDir); err != nil {
		return nil, err
	}

	// Already running (a previous Tradewind left it up)? Reuse it.
	if port, ok := c.runningPort(); ok {
		err := c.waitListening(ctx, port)
		if err == nil {
			err = c.waitReady(ctx, port, readyTimeout)
		}
		if err == nil {
			c.log.Info("postgres: reusing running throwaway cluster", "dir", c.dir, "port", port)
			return c.result(ctx, port, o.DBName)
		}
		c.log.Warn("postgres: throwaway cluster has a postmaster.pid but does not answer; starting it", "dir", c.dir, "err", err)
	}

	if major == 0 {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}

	port, err := c.start(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.afterStart(ctx, port, o.DBName)
	if err != nil {
		// Do not leave a server behind that nobody will stop.
		if stopErr := c.stop(context.WithoutCancel(ctx)); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	return res, nil
}

func (c *cluster) afterStart(ctx context.Context, port int, dbName string) (*Result, error) {
	if err := c.waitReady(ctx, port, readyTimeout); err != nil {
		return nil, fmt.Errorf("cluster in %s started on port %d but does not answer (see %s): %w",
			c.dir, port, filepath.Join(c.dir, logFileName), err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, portFileName), []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("remember port: %w", err)
	}
	c.log.Info("postgres: started throwaway cluster", "dir", c.dir, "port", port, "version", c.bins.major)
	return c.result(ctx, port, dbName)
}

func (c *cluster) result(ctx context.Context, port int, dbName string) (*Result, error) {
	dbURL := buildURL(superuser, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dbName)
	if err := EnsureDatabase(ctx, dbURL); err != nil {
		return nil, fmt.Errorf("cluster in %s: %w", c.dir, err)
	}
	var once sync.Once
	var stopErr error
	stop := func(ctx context.Context) error {
		once.Do(func() { stopErr = c.stop(ctx) })
		return stopErr
	}
	return &Result{URL: dbURL, Source: SourceCluster, Stop: stop}, nil
}

// initialisedVersion returns the major version in PG_VERSION, or 0 when the
// cluster has not been initialised yet.
func (c *cluster) initialisedVersion() (int, error) {
	data, err := os.ReadFile(filepath.Join(c.dir, "PG_VERSION"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read cluster version: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if i := strings.IndexByte(s, '.'); i >= 0 { // 9.6 and older
		s = s[:i]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: unexpected content %q", filepath.Join(c.dir, "PG_VERSION"), data)
	}
	return n, nil
}

// pickBinaries returns the preferred installation, or, for an existing
// cluster, the one matching its major version.
func pickBinaries(all []binaries, major int, dir string) (binaries, error) {
	if major == 0 {
		return all[0], nil
	}
	var have []string
	for _, b := range all {
		if b.major == major {
			return b, nil
		}
		have = append(have, fmt.Sprintf("%d (%s)", b.major, b.dir))
	}
	return binaries{}, fmt.Errorf("the cluster in %s was created by PostgreSQL %d, but only these server binaries were found: %s; "+
		"install PostgreSQL %d's server binaries, or delete %s to start afresh (its data is lost)",
		dir, major, strings.Join(have, ", "), major, dir)
}

// prepareDir creates the cluster directory, owned by the user the server
// runs as, and checks that user can reach it.
func (c *cluster) prepareDir(dataDir string) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := os.Mkdir(c.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create cluster directory: %w", err)
	}
	if c.runAs == nil {
		return nil
	}
	if err := chownTree(c.dir, c.runAs); err != nil {
		return fmt.Errorf("give %s to OS user %s: %w", c.dir, c.runAs.name, err)
	}
	return checkReachable(filepath.Dir(c.dir), c.runAs)
}

// runningPort reports the port of a live postmaster recorded in
// postmaster.pid.
func (c *cluster) runningPort() (int, bool) {
	data, err := os.ReadFile(filepath.Join(c.dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	// Line 1: PID; line 4: port.
	lines := strings.Split(string(data), "\n")
	if len(lines) < 4 {
		return 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 || port <= 0 {
		return 0, false
	}
	if isZombie(pid) {
		// The postmaster was killed and awaits reaping. PostgreSQL would
		// take it for a live server and refuse to start.
		_ = os.Remove(filepath.Join(c.dir, "postmaster.pid"))
		c.log.Warn("postgres: removed stale postmaster.pid of a killed server", "dir", c.dir, "pid", pid)
		return 0, false
	}
	if !processAlive(pid) {
		return 0, false
	}
	return port, true
}

func (c *cluster) initdb(ctx context.Context) error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("read cluster directory: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty but holds no initialised cluster (no PG_VERSION), perhaps from an interrupted first start; "+
			"delete it and try again", c.dir)
	}
	c.log.Info("postgres: initialising throwaway cluster (first run)", "dir", c.dir, "initdb", c.bins.initdb)
	_, err = c.run(ctx, false, c.bins.initdb,
		"-D", c.dir, "-A", "trust", "-U", superuser, "-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	return nil
}

// start starts the cluster on a free loopback port and returns the port.
func (c *cluster) start(ctx context.Context) (int, error) {
	saved := 0
	if data, err := os.ReadFile(filepath.Join(c.dir, portFileName)); err == nil {
		saved, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	socketDirs := shellQuote(c.dir)
	if len(filepath.Join(c.dir, socketBaseName)) > maxSocketPath || strings.ContainsAny(c.dir, `,"`) {
		socketDirs = "''" // no unix socket; Tradewind connects over TCP
	}

	logFile := filepath.Join(c.dir, logFileName)
	var lastErr error
	portRetries, leftoverRetries := 3, 20
	for {
		port, err := choosePort(saved)
		if err != nil {
			return 0, err
		}
		logStart := fileSize(logFile)
		opts := fmt.Sprintf("-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s", port, socketDirs)
		_, err = c.run(ctx, true, c.bins.pgCtl, "start", "-D", c.dir, "-w", "-s",
			"-t", strconv.Itoa(int(startTimeout/time.Second)), "-l", logFile, "-o", opts)
		if err == nil {
			return port, nil
		}
		serverLog := readFrom(logFile, logStart)
		lastErr = fmt.Errorf("pg_ctl start on port %d: %w\nserver log (%s):\n%s", port, err, logFile, serverLog)
		switch {
		case ctx.Err() != nil:
			return 0, lastErr
		case !portFree(port) && portRetries > 1:
			// Lost a race for the port: take another.
			portRetries--
			saved = 0
		case leftoverRetries > 1 && (strings.Contains(serverLog, "lock file") || strings.Contains(serverLog, "shared memory block")):
			// Processes of a killed server are still on their way out.
			leftoverRetries--
			if !retry.Sleep(ctx, 500*time.Millisecond) {
				return 0, lastErr
			}
		default:
			return 0, lastErr
		}
	}
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns the end of file p from offset on, at most 4 KiB.
func readFrom(p string, offset int64) string {
	data, err := os.ReadFile(p)
	if err != nil || offset > int64(len(data)) {
		return ""
	}
	data = data[offset:]
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return strings.TrimSpace(string(data))
}

func (c *cluster) stop(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dir, "postmaster.pid")); errors.Is(err, fs.ErrNotExist) {
		return nil // not running
	}
	if _, err := c.run(ctx, false, c.bins.pgCtl, "stop", "-D", c.dir, "-m", "fast", "-w", "-s",
		"-t", strconv.Itoa(int(startTimeout/time.Second))); err != nil {
		return fmt.Errorf("pgboot: stop throwaway cluster in %s: %w", c.dir, err)
	}
	c.log.Info("postgres: stopped throwaway cluster", "dir", c.dir)
	return nil
}

// waitListening gives a postmaster that is just starting a moment to open
// its port; a dead one whose PID was reused never will.
func (c *cluster) waitListening(ctx context.Context, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var err error
	for range 20 {
		var conn net.Conn
		d := net.Dialer{Timeout: time.Second}
		if conn, err = d.DialContext(ctx, "tcp", addr); err == nil {
			return conn.Close()
		}
		if !retry.Sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	return err
}

// waitReady polls until the cluster accepts connections.
func (c *cluster) waitReady(ctx context.Context, port int, timeout time.Duration) error {
	cfg, err := pgx.ParseConfig(buildURL(superuser, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "postgres") + "&connect_timeout=2")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn.Close(ctx)
		}
		if !retry.Sleep(ctx, 100*time.Millisecond) {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
	}
}

// run runs a PostgreSQL program as c.runAs (if set) and returns its output.
// detach puts it in its own process group, so the postmaster it starts does
// not get the terminal's Ctrl-C meant for Tradewind.
func (c *cluster) run(ctx context.Context, detach bool, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/" // our working directory may be unreadable for c.runAs
	cmd.Env = childEnv()
	cmd.SysProcAttr = sysProcAttr(c.runAs, detach)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		as := ""
		if c.runAs != nil {
			as = " as OS user " + c.runAs.name
		}
		msg := strings.TrimSpace(out.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return out.Bytes(), fmt.Errorf("%s%s: %w: %s", filepath.Base(name), as, err, msg)
	}
	return out.Bytes(), nil
}

// childEnv is our environment without PG* variables, which would otherwise
// redirect pg_ctl (PGDATA, PGPORT, PGHOST, ...).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_MESSAGES=C")
}

// choosePort prefers the saved port, then 5433.., then any free port.
func choosePort(saved int) (int, error) {
	if saved > 0 && portFree(saved) {
		return saved, nil
	}
	for p := firstPort; p <= lastPort; p++ {
		if portFree(p) {
			return p, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// shellQuote quotes s for /bin/sh (pg_ctl passes -o through the shell).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
