package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the NATS KV bucket holding the flags, one key per flag.
const Bucket = "TRADEWIND_FLAGS"

// history is how many revisions of a flag the bucket keeps, so
// `nats kv history TRADEWIND_FLAGS NAME` shows who rolled out what.
const history = 10

// Admin reads and writes flags in the bucket. It is what the CLI uses;
// services read through a Store.
type Admin struct {
	kv jetstream.KeyValue
}

// Ensure creates (or updates the configuration of) the bucket with the
// given replicas (1, or 3 on a cluster) and returns its Admin.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int) (*Admin, error) {
	if js == nil {
		return nil, errors.New("flags: JetStream is required")
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "tradewind feature flags (tradewind flags --help)",
		History:     history,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("flags bucket %s: %w", Bucket, err)
	}
	return &Admin{kv: kv}, nil
}

// Existing opens the bucket a running system created; ErrNoBucket when
// there is none. The CLI uses it so that it never creates the bucket with
// the wrong replicas.
func Existing(ctx context.Context, js jetstream.JetStream) (*Admin, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, ErrNoBucket
	}
	if err != nil {
		return nil, fmt.Errorf("flags bucket %s: %w", Bucket, err)
	}
	return &Admin{kv: kv}, nil
}

// Get reads one flag; ErrNotFound when it does not exist.
func (a *Admin) Get(ctx context.Context, name string) (Flag, error) {
	f, _, err := a.get(ctx, name)
	return f, err
}

func (a *Admin) get(ctx context.Context, name string) (Flag, uint64, error) {
	if !nameRE.MatchString(name) {
		return Flag{}, 0, fmt.Errorf("%w: name %q", ErrInvalidFlag, name)
	}
	e, err := a.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Flag{}, 0, fmt.Errorf("flag %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Flag{}, 0, fmt.Errorf("read flag %s: %w", name, err)
	}
	f, err := decode(e)
	if err != nil {
		return Flag{}, 0, err
	}
	return f, e.Revision(), nil
}

// List returns every flag sorted by name.
func (a *Admin) List(ctx context.Context) ([]Flag, error) {
	keys, err := a.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list flags: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	var out []Flag
	for k := range keys.Keys() {
		f, err := a.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(x, y Flag) int {
		switch {
		case x.Name < y.Name:
			return -1
		case x.Name > y.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// Update changes flag name with change, creating it (off, no lists) when
// it does not exist, and returns what was stored and its revision. It is
// a compare-and-set: a concurrent writer makes it re-read and re-apply
// change, so no update is lost.
func (a *Admin) Update(ctx context.Context, name string, change func(*Flag)) (Flag, uint64, error) {
	for attempt := 0; ; attempt++ {
		f, rev, err := a.get(ctx, name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Flag{}, 0, err
		}
		if errors.Is(err, ErrNotFound) {
			f = Flag{Name: name}
		}
		change(&f)
		f.Name, f.UpdatedAt = name, time.Now().UTC()
		if err := f.Validate(); err != nil {
			return Flag{}, 0, err
		}
		raw, err := json.Marshal(f)
		if err != nil {
			return Flag{}, 0, fmt.Errorf("encode flag %s: %w", name, err)
		}
		if rev == 0 {
			rev, err = a.kv.Create(ctx, name, raw)
		} else {
			rev, err = a.kv.Update(ctx, name, raw, rev)
		}
		switch {
		case err == nil:
			return f, rev, nil
		case attempt < 10 && (errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)):
			continue // lost a race with another writer: re-read
		default:
			return Flag{}, 0, fmt.Errorf("write flag %s: %w", name, err)
		}
	}
}

// Delete removes a flag (it reads as off everywhere); ErrNotFound when it
// does not exist.
func (a *Admin) Delete(ctx context.Context, name string) error {
	if _, _, err := a.get(ctx, name); err != nil {
		return err
	}
	if err := a.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete flag %s: %w", name, err)
	}
	return nil
}

// lastRevision is the bucket's newest revision: once a watcher applied it,
// it saw every write made before the call.
func (a *Admin) lastRevision(ctx context.Context) (uint64, error) {
	st, err := a.kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("flags bucket status: %w", err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("flags bucket status: unexpected type %T", st)
	}
	return bs.StreamInfo().State.LastSeq, nil
}

func decode(e jetstream.KeyValueEntry) (Flag, error) {
	var f Flag
	if err := json.Unmarshal(e.Value(), &f); err != nil {
		return Flag{}, fmt.Errorf("decode flag %s (revision %d): %w", e.Key(), e.Revision(), err)
	}
	f.Name = e.Key() // the key is the truth
	return f, nil
}
