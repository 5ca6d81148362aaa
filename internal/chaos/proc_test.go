package chaos_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a child process the test starts, kills and restarts. Its output
// is appended to one log file across restarts. An exit the test did not
// cause is counted (and the process restarted when restart is set): a
// Tradewind that dies of a NATS restart fails the test.
type proc struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string
	restart bool

	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	expected   bool // the next exit is the test's doing
	unexpected []string
	starts     int
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.startLocked(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
}

// restartNow starts the process again (from any goroutine).
func (p *proc) restartNow() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startLocked()
}

func (p *proc) startLocked() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n===== start %d of %s at %s\n", p.starts+1, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	p.starts++
	p.cmd, p.expected = cmd, false
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		close(exited)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cmd != cmd || p.expected {
			return
		}
		p.unexpected = append(p.unexpected, fmt.Sprintf("%s exited on its own at %s: %v", p.name, time.Now().Format(time.TimeOnly), err))
		if p.restart {
			_ = p.startLocked()
		}
	}()
	return nil
}

// signal sends sig and waits for the process to exit (SIGKILL after 20s).
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.expected = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// stop ends the process for good (SIGTERM, then SIGKILL).
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	p.mu.Lock()
	p.cmd = nil
	p.mu.Unlock()
}

func (p *proc) problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.unexpected...)
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts connections on addr.
func waitListening(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %s: %v", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
