package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StateFile is written by `serve` into its data directory so that the CLI
// (publish, load, check) and the nats CLI can find a running system.
const StateFile = "state.json"

// State says where a running system's endpoints are.
type State struct {
	PID         int       `json:"pid"`
	NATSURL     string    `json:"nats_url"`
	DatabaseURL string    `json:"database_url"`
	HTTPURL     string    `json:"http_url"`
	OpsURL      string    `json:"ops_url,omitempty"`     // /metrics and /readyz (the operator listener)
	PaymentURL  string    `json:"payment_url,omitempty"` // the payment provider (the in-process simulator unless configured)
	StartedAt   time.Time `json:"started_at"`
}

// WriteState writes the state file atomically, readable by its owner only
// (the database URL may hold a password).
func WriteState(dir string, s State) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, StateFile))
}

// ReadState reads a running system's state file. A file whose process is
// gone is reported as absent.
func ReadState(dir string) (State, error) {
	var s State
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("state file %s: %w", filepath.Join(dir, StateFile), err)
	}
	if s.PID > 0 && !processAlive(s.PID) {
		return s, fmt.Errorf("state file %s: process %d is not running: %w", filepath.Join(dir, StateFile), s.PID, os.ErrNotExist)
	}
	return s, nil
}

// RemoveState deletes the state file if it is ours.
func RemoveState(dir string, pid int) {
	s, err := ReadState(dir)
	if err == nil && s.PID == pid || errors.Is(err, os.ErrNotExist) {
		_ = os.Remove(filepath.Join(dir, StateFile))
	}
}
