package store_test

import (
	"context"
	"testing"

	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/testenv"
)

// Tradewind's sessions plan with random_page_cost 1.1 (the working set is
// in memory), unless DATABASE_URL says otherwise.
func TestOpenSetsRandomPageCostUnlessTheURLDoes(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ url, want string }{
		{testenv.DatabaseURL(t), "1.1"},
		{testenv.DatabaseURL(t) + "&random_page_cost=2", "2"},
	} {
		pool, err := store.Open(ctx, c.url)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = pool.QueryRow(ctx, `SHOW random_page_cost`).Scan(&got)
		pool.Close()
		if err != nil || got != c.want {
			t.Errorf("%s: random_page_cost %q (%v), want %q", c.url, got, err, c.want)
		}
	}
}
