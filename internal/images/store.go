package images

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotFound: no such variant is stored.
var ErrNotFound = errors.New("image not found")

// Store keeps images in the Object Store bucket (broker.EnsureImageStore
// opens it).
type Store struct{ OBS jetstream.ObjectStore }

// Save stores every variant of img not stored yet, thumbnails first and
// the original last: a stored original means the whole image is (a crash
// midway leaves thumbnails the next upload of the same bytes completes).
//
// Hazard: two instances saving the same new image at once may both put a
// variant; the later put replaces the earlier (same bytes, so readers see
// no difference) and tries to purge the earlier's chunks, which the api
// role may not do: that put waits for the refused purge's timeout and
// the earlier chunks stay, orphaned (only ops can purge them).
func (s Store) Save(ctx context.Context, img *Image) error {
	all := append(append([]Variant(nil), img.Thumbnails...), img.Original)
	for _, v := range all {
		name := Name(img.Hash, v.File)
		if _, err := s.OBS.GetInfo(ctx, name); err == nil {
			continue
		} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("image %s: %w", name, err)
		}
		if _, err := s.OBS.PutBytes(ctx, name, v.Data); err != nil {
			return fmt.Errorf("store image %s: %w", name, err)
		}
	}
	return nil
}

// Get returns a stored variant's bytes and content type (the file's
// extension says it: Process names every variant by its type).
func (s Store) Get(ctx context.Context, hash, file string) ([]byte, string, error) {
	name := Name(hash, file)
	b, err := s.OBS.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("read image %s: %w", name, err)
	}
	return b, contentTypeOf(file), nil
}

func contentTypeOf(file string) string {
	for ct, ext := range accepted {
		if len(file) > len(ext) && file[len(file)-len(ext)-1:] == "."+ext {
			return ct
		}
	}
	return "application/octet-stream"
}
