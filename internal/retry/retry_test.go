package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/retry"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestWindowDoublesFromBaseUpToMax(t *testing.T) {
	t.Parallel()
	b := retry.Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Window(i + 1); got != w*time.Millisecond {
			t.Errorf("Window(%d) = %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
	if got := b.Window(1 << 20); got != time.Second {
		t.Errorf("Window(huge) = %s, want the cap", got)
	}
	if got := (retry.Backoff{}).Window(1); got != 100*time.Millisecond {
		t.Errorf("zero Backoff: Window(1) = %s, want 100ms", got)
	}
}

func TestDelayIsJitteredWithinTheWindow(t *testing.T) {
	t.Parallel()
	b := retry.Backoff{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for attempt := 1; attempt <= 6; attempt++ {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := b.Delay(attempt)
			if d < 0 || d > b.Window(attempt) {
				t.Fatalf("Delay(%d) = %s outside [0, %s]", attempt, d, b.Window(attempt))
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Delay(%d): %d distinct values in 200, want jitter", attempt, len(seen))
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if retry.Sleep(ctx, time.Hour) {
		t.Error("Sleep on a cancelled context reported that the hour passed")
	}
	if !retry.Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep(1ms) did not report that it passed")
	}
}

func TestForeverRestartsFailedWorkUntilTheContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := 0
	err := retry.Forever(ctx, retry.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}, quiet, "failed",
		func(context.Context) error {
			runs++
			if runs == 5 {
				cancel()
				return nil
			}
			return errors.New("broker down")
		})
	if err != nil || runs != 5 {
		t.Fatalf("Forever = %v after %d runs, want nil after 5", err, runs)
	}
}

func TestForeverReturnsAPermanentError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	runs := 0
	err := retry.Forever(context.Background(), retry.Backoff{Base: time.Millisecond}, quiet, "failed",
		func(context.Context) error {
			if runs++; runs < 3 {
				return errors.New("transient")
			}
			return retry.Permanent(stop)
		})
	if err != stop || runs != 3 {
		t.Fatalf("Forever = %v after %d runs, want the permanent error after 3", err, runs)
	}
}

func TestUntilRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	tries := 0
	err := retry.Until(context.Background(), retry.Backoff{Base: time.Millisecond}, quiet, "failed",
		func(context.Context) error {
			if tries++; tries < 4 {
				return errors.New("not yet")
			}
			return nil
		})
	if err != nil || tries != 4 {
		t.Fatalf("Until = %v after %d tries, want nil after 4", err, tries)
	}
}

func TestUntilReturnsTheLastErrorWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	down := errors.New("down")
	err := retry.Until(ctx, retry.Backoff{Base: time.Millisecond}, quiet, "failed",
		func(context.Context) error { cancel(); return down })
	if !errors.Is(err, down) {
		t.Fatalf("Until = %v, want the last error", err)
	}
}

func ExampleBackoff() {
	b := retry.Backoff{Base: 500 * time.Millisecond, Max: 3 * time.Second}
	for attempt := 1; attempt <= 5; attempt++ {
		// Delay(attempt) is uniformly random in [0, Window(attempt)].
		fmt.Println(attempt, b.Window(attempt))
	}
	// Output:
	// 1 500ms
	// 2 1s
	// 3 2s
	// 4 3s
	// 5 3s
}

func TestEveryDrainsThenWaitsAndSurvivesFailures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rounds := 0
	err := retry.Every(ctx, time.Millisecond, quiet, "round failed", func(context.Context) (bool, error) {
		rounds++
		switch rounds {
		case 1, 2:
			return true, nil // more work: the next round runs at once
		case 3:
			return false, errors.New("database down")
		case 5:
			cancel()
		}
		return false, nil
	})
	if err != nil || rounds != 5 {
		t.Fatalf("Every = %v after %d rounds, want nil after 5", err, rounds)
	}
}
