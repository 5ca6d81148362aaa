package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// fleet is n clients of one system, each subscribed to its personal
// channel and to the shared one, each with a reader goroutine. It is
// measured in phases (run): a phase counts only the publications stamped
// after it began, so deliveries left over from an earlier, overloaded
// phase never count twice. The fleet outlives its phases: the fixed-rate
// run and the capacity steps use the same connections, and clients the
// server dropped (slow consumers) are dialled again before the next phase.
type fleet struct {
	s         system
	n         int
	clients   []*client
	phase     atomic.Pointer[phase]
	lastFrame atomic.Int64 // unix ns of the latest frame of any phase
	readers   sync.WaitGroup
	sentP     int64 // personal messages published so far (see publisherMain)
}

// client is one connection and the latencies its reader recorded in the
// current phase.
type client struct {
	c    *websocket.Conn
	dead atomic.Bool // its reader stopped: the connection failed or was closed
	mu   sync.Mutex  // guards lat: the reader appends, run collects
	lat  []int64
}

// phase is one measurement's counters.
type phase struct {
	from                      int64 // unix ns: publications stamped earlier are not counted
	delivered, frames, lastAt atomic.Int64
}

// noPhase is the phase before the first: it counts nothing.
var noPhase = &phase{from: math.MaxInt64}

// load is a publishing schedule: messages/s to the personal channels
// (round robin) and to the shared channel, for d.
type load struct {
	personal, shared int
	d                time.Duration
}

// sample is what one phase measured.
type sample struct {
	offered             float64 // deliveries/s the schedule offers: personal + shared × clients
	delivered, expected int64
	frames              int64 // WebSocket messages that carried the delivered publications
	rate                float64
	p50, p99            time.Duration
	lost                int           // connections that failed during the phase
	cpu                 time.Duration // the server's CPU time, publishing and delivering
}

// perCPUSecond is how many publications the server delivered per second
// of its CPU time: on a machine it shares with the clients, the publisher
// and other work, the measure of its cost that its share of the CPU does
// not change.
func (s sample) perCPUSecond() float64 {
	return float64(s.delivered) / max(s.cpu.Seconds(), 1e-3)
}

// connect dials the n clients (64 at a time) and starts their readers.
func connect(s system, n int) (*fleet, error) {
	f := &fleet{s: s, n: n, clients: make([]*client, n)}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	if err := f.dial(all); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// dial connects the clients at the indexes given, concurrently, and
// starts their readers; it returns the first error.
func (f *fleet) dial(idx []int) error {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, i := range idx {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := f.s.dial(ctx, i)
			if err == nil {
				c.SetReadLimit(1 << 20)
				if err = f.s.handshake(ctx, c, i); err != nil {
					_ = c.CloseNow()
				}
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("client %d: %w", i, err)
				}
				mu.Unlock()
				return
			}
			cl := &client{c: c}
			f.clients[i] = cl
			f.readers.Add(1)
			go f.read(cl)
		}()
	}
	wg.Wait()
	return first
}

// read counts every publication of the current phase a frame carries and
// keeps its latency. Frames are read into pooled buffers (no allocation
// per frame) and scanned, not decoded: the clients share the machine with
// the server, so they do as little as possible, the same for both systems.
func (f *fleet) read(cl *client) {
	defer f.readers.Done()
	defer cl.dead.Store(true)
	var ph *phase
	var k int64
	record := func(t int64) {
		if t < ph.from {
			return
		}
		now := time.Now().UnixNano()
		ph.lastAt.Store(now)
		cl.lat = append(cl.lat, now-t)
		k++
	}
	for {
		b, err := readFrame(cl.c)
		if err != nil {
			return
		}
		f.lastFrame.Store(time.Now().UnixNano())
		k = 0
		cl.mu.Lock() // run stores a new phase, then clears lat under mu
		if ph = f.phase.Load(); ph == nil {
			ph = noPhase
		}
		f.s.stamps(*b, record)
		cl.mu.Unlock()
		if k > 0 {
			ph.delivered.Add(k)
			ph.frames.Add(1)
		}
		f.s.reply(cl.c, *b)
		frames.Put(b)
	}
}

// redial connects again the clients whose connection failed and returns
// how many there were.
func (f *fleet) redial() (int, error) {
	var idx []int
	for i, cl := range f.clients {
		if cl == nil || cl.dead.Load() {
			if cl != nil {
				_ = cl.c.CloseNow()
			}
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return 0, nil
	}
	return len(idx), f.dial(idx)
}

// settle waits until no frame has arrived for quiet (at most max): the
// backlog of an earlier phase is delivered before the next one starts.
func (f *fleet) settle(quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && time.Since(time.Unix(0, f.lastFrame.Load())) < quiet {
		time.Sleep(20 * time.Millisecond)
	}
}

// drainLimit bounds how long run waits for deliveries after publishing
// ended (-drain). A server over capacity is still working off its backlog
// when it passes: delivered/expected then counts what arrived in time,
// not what was lost.
var drainLimit = 60 * time.Second

// run publishes l from a publisher child process and measures the
// deliveries: it waits until every publication reached every subscriber,
// or until nothing has arrived for a second after publishing ended, or
// drainLimit. profile, when not nil, is started just before publishing and its
// stop called when publishing ends.
func (f *fleet) run(l load, profile func() (stop func(), err error)) (sample, error) {
	smp := sample{offered: float64(l.personal + l.shared*f.n)}
	if _, err := f.redial(); err != nil {
		return smp, fmt.Errorf("dial again: %w", err)
	}
	f.settle(250*time.Millisecond, 10*time.Second)
	cpu0, err := procCPU(f.s.pids())
	if err != nil {
		return smp, err
	}
	ph := &phase{from: time.Now().UnixNano()}
	f.phase.Store(ph)
	for _, cl := range f.clients {
		cl.mu.Lock()
		cl.lat = cl.lat[:0]
		cl.mu.Unlock()
	}
	stop := func() {}
	if profile != nil {
		if stop, err = profile(); err != nil {
			return smp, err
		}
	}
	// The publisher runs in a child process: in this one, its sends would
	// wait behind the 10,000 client goroutines in the scheduler's queue.
	start, sentP, sentS, err := runPublisher(f.s, f.n, l, f.sentP)
	stop()
	if err != nil {
		return smp, err
	}
	f.sentP += sentP
	smp.expected = sentP + sentS*int64(f.n)
	ended := time.Now()
	deadline := ended.Add(drainLimit)
	for ph.delivered.Load() < smp.expected && time.Now().Before(deadline) {
		if time.Since(ended) > time.Second && time.Since(time.Unix(0, f.lastFrame.Load())) > time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cpu1, err := procCPU(f.s.pids())
	if err != nil {
		return smp, err
	}
	smp.cpu = cpu1 - cpu0
	smp.delivered = ph.delivered.Load()
	smp.frames = ph.frames.Load()
	// Delivered per second from the first publish to the last delivery.
	smp.rate = float64(smp.delivered) / max(time.Duration(ph.lastAt.Load()-start).Seconds(), 1e-3)
	var all []int64
	for _, cl := range f.clients {
		if cl.dead.Load() {
			smp.lost++
		}
		cl.mu.Lock()
		all = append(all, cl.lat...)
		cl.mu.Unlock()
	}
	slices.Sort(all)
	if len(all) > 0 {
		smp.p50 = time.Duration(all[len(all)/2])
		smp.p99 = time.Duration(all[len(all)*99/100])
	}
	return smp, nil
}

// close closes every connection and waits for the readers.
func (f *fleet) close() {
	for _, cl := range f.clients {
		if cl != nil {
			_ = cl.c.CloseNow()
		}
	}
	f.readers.Wait()
}
