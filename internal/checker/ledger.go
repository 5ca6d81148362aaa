package checker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tradewind/tradewind/internal/provider"
)

// maxLedger bounds the ledger answer read (about 1.5 KB an authorization).
const maxLedger = 512 << 20

// HTTPLedger reads the ledger from a payment provider's GET /v1/ledger.
type HTTPLedger struct {
	URL    string // base URL, e.g. http://127.0.0.1:8090
	Client *http.Client
}

var _ LedgerSource = HTTPLedger{}

// Ledger implements LedgerSource.
func (h HTTPLedger) Ledger(ctx context.Context) (provider.Ledger, error) {
	var l provider.Ledger
	if h.URL == "" {
		return l, errors.New("payment provider ledger: no URL")
	}
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(h.URL, "/")+"/v1/ledger", nil)
	if err != nil {
		return l, fmt.Errorf("payment provider ledger: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return l, fmt.Errorf("payment provider ledger: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return l, fmt.Errorf("payment provider ledger: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxLedger)).Decode(&l); err != nil {
		return l, fmt.Errorf("payment provider ledger: decode: %w", err)
	}
	return l, nil
}
