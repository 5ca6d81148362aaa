package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tradewind/tradewind/internal/provider"
)

// faults switches the payment provider simulator's fault settings through
// its /admin/faults API (the only way the generator reaches into the
// system besides NATS).
type faults struct {
	url    string
	client *http.Client
}

func newFaults(baseURL string) *faults {
	return &faults{url: strings.TrimRight(baseURL, "/") + "/admin/faults", client: &http.Client{Timeout: 5 * time.Second}}
}

// get returns the current settings.
func (f *faults) get(ctx context.Context) (provider.Faults, error) {
	var out provider.Faults
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return out, err
	}
	return out, f.do(req, &out)
}

// setOutage changes only the outage mode.
func (f *faults) setOutage(ctx context.Context, mode string) error {
	body, _ := json.Marshal(map[string]string{"outage": mode})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, f.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return f.do(req, nil)
}

// restore puts back settings read with get.
func (f *faults) restore(ctx context.Context, s provider.Faults) error {
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, f.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return f.do(req, nil)
}

func (f *faults) do(req *http.Request, out any) error {
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("payment provider faults: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("payment provider faults: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("payment provider faults: %s %s: %s: %s", req.Method, f.url, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("payment provider faults: decode: %w", err)
		}
	}
	return nil
}
