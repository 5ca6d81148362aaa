package prefs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/notifier/prefs"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestUnknownKindsAreRefused(t *testing.T) {
	got, err := prefs.Normalize([]string{events.KindPaymentRefunded, events.KindOrderPlaced, events.KindPaymentRefunded})
	if err != nil || fmt.Sprint(got) != "[order.placed payment.refunded]" {
		t.Fatalf("normalize: %v %v", got, err)
	}
	_, err = prefs.Normalize([]string{events.KindOrderPlaced, "order.shipped"})
	var unknown *prefs.UnknownKindError
	if !errors.As(err, &unknown) || unknown.Index != 1 || unknown.Kind != "order.shipped" {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := (prefs.Store{Pool: testenv.Pool(t)}).SetMuted(context.Background(), "u-"+uuid.NewString()[:8], []string{"*"}); !errors.As(err, &unknown) {
		t.Fatalf("the store stored an unknown kind: %v", err)
	}
}

// TestPreferencesArePerUser: a user's list replaces the last one; another
// user's stays as it was.
func TestPreferencesArePerUser(t *testing.T) {
	ctx := context.Background()
	s := prefs.Store{Pool: testenv.Pool(t)}
	a, b := "a-"+uuid.NewString()[:8], "b-"+uuid.NewString()[:8]
	for _, step := range []struct {
		user string
		set  []string
	}{{a, []string{events.KindOrderPlaced, events.KindOrderCancelled}}, {b, []string{events.KindPaymentRefunded}}, {a, []string{events.KindOrderConfirmed}}} {
		if _, err := s.SetMuted(ctx, step.user, step.set); err != nil {
			t.Fatal(err)
		}
	}
	for user, want := range map[string]string{a: "[order.confirmed]", b: "[payment.refunded]"} {
		if got, err := s.Muted(ctx, user); err != nil || fmt.Sprint(got) != want {
			t.Errorf("%s muted %v (%v), want %s", user, got, err, want)
		}
	}
}
