package provider

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"os"
)

// IndexFile is the journal's index under Options.DataDir, rebuilt at
// every start (see diskIndex).
const IndexFile = "ledger.idx"

// Index name kinds: an idempotency key, an authorization id, an order id.
const (
	kindKey   = 'k'
	kindAuth  = 'a'
	kindOrder = 'o'
)

const (
	slotSize    = 16      // a slot: 8-byte name hash (0: empty), 8-byte journal offset
	probeSlots  = 64      // slots read at once while probing
	firstSlots  = 1 << 16 // initial table size, a power of two
	maxLoadNum  = 1       // grow when used slots exceed maxLoadNum/maxLoadDen
	maxLoadDen  = 2       // of the table
	growSuffix  = ".grow" // the table being built by grow
	maxLineSize = 1 << 20 // a journal line longer than this is refused
)

// diskIndex is an open-addressing hash table (linear probing) kept in a
// file: it maps a name (an idempotency key, an authorization id or an
// order id) to the offset of a journal line, so that a miss in the
// server's working set costs a probe or two (a few page-cached reads)
// instead of a journal scan, and a name that never existed is known to be
// absent without one. It holds nothing in memory per entry.
//
// A slot keeps only the name's 64-bit hash: a match is confirmed by the
// caller against the journal line it points to, so a hash collision costs
// a read, never a wrong answer. The table is derived from the journal:
// truncated and rebuilt at every start, so it needs no crash consistency.
// Not safe for concurrent use (the server calls it under its mutex).
//
// Hand-written rather than an embedded key-value store (bbolt, pebble):
// the journal stays the simulator's one record, in the format tests and
// operators read (a JSON line per answer), and this table is only derived
// from it, rebuilt at every start, so it needs none of a store's crash
// consistency or compaction; a store would hold a second copy of the
// ledger and a dependency the rest of Tradewind does not use.
type diskIndex struct {
	f     *os.File
	path  string
	seed  maphash.Seed
	slots uint64 // a power of two
	used  uint64
	// growChunk is the slots grow reads and writes at once (a power of
	// two; small in tests to cross chunk boundaries).
	growChunk uint64
}

// openIndex creates an empty index of slots slots (a power of two) at path.
func openIndex(path string, slots uint64) (*diskIndex, error) {
	x := &diskIndex{path: path, seed: maphash.MakeSeed(), slots: slots, growChunk: 1 << 14}
	f, err := newTable(path, x.slots)
	if err != nil {
		return nil, err
	}
	x.f = f
	return x, nil
}

func newTable(path string, slots uint64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("payment provider: index: %w", err)
	}
	if err := f.Truncate(int64(slots * slotSize)); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("payment provider: index: size %s: %w", path, err)
	}
	return f, nil
}

func (x *diskIndex) close() error { return x.f.Close() }

func (x *diskIndex) hash(kind byte, name string) uint64 {
	var h maphash.Hash
	h.SetSeed(x.seed)
	_ = h.WriteByte(kind)
	_, _ = h.WriteString(name)
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// find probes for h: it returns the offset of the first slot with hash h
// whose line match confirms, or found false and the empty slot where h
// would go.
func (x *diskIndex) find(h uint64, match func(off int64) (bool, error)) (off int64, slot uint64, found bool, err error) {
	buf := make([]byte, probeSlots*slotSize)
	mask := x.slots - 1
	slot = h & mask
	for probed := uint64(0); probed < x.slots; {
		n := min(probeSlots, x.slots-slot) // read up to the table's end, then wrap
		b := buf[:n*slotSize]
		if _, err := x.f.ReadAt(b, int64(slot*slotSize)); err != nil {
			return 0, 0, false, fmt.Errorf("payment provider: index: read: %w", err)
		}
		for i := range n {
			sh := binary.LittleEndian.Uint64(b[i*slotSize:])
			if sh == 0 {
				return 0, slot + i, false, nil
			}
			if sh != h {
				continue
			}
			o := int64(binary.LittleEndian.Uint64(b[i*slotSize+8:]))
			ok, err := match(o)
			if err != nil {
				return 0, 0, false, err
			}
			if ok {
				return o, slot + i, true, nil
			}
		}
		probed += n
		slot = (slot + n) & mask
	}
	return 0, 0, false, fmt.Errorf("payment provider: index: table full")
}

// put maps h (confirmed by match) to off, replacing the entry it had.
func (x *diskIndex) put(h uint64, off int64, match func(off int64) (bool, error)) error {
	_, slot, found, err := x.find(h, match)
	if err != nil {
		return err
	}
	if err := writeSlot(x.f, slot, h, off); err != nil {
		return err
	}
	if found {
		return nil
	}
	x.used++
	if x.used*maxLoadDen > x.slots*maxLoadNum {
		return x.grow()
	}
	return nil
}

func writeSlot(f *os.File, slot, h uint64, off int64) error {
	var b [slotSize]byte
	binary.LittleEndian.PutUint64(b[:], h)
	binary.LittleEndian.PutUint64(b[8:], uint64(off))
	if _, err := f.WriteAt(b[:], int64(slot*slotSize)); err != nil {
		return fmt.Errorf("payment provider: index: write: %w", err)
	}
	return nil
}

// grow doubles the table into a new file, which then replaces the old
// one. It streams: the old table is read a chunk at a time and the new
// one built in two windows of two chunks (the low and the high half, where
// an entry's new home is its old home or that plus the old size), flushed
// as the read moves on. An entry whose new home is outside the windows (a
// probe that wrapped around the table's end, or a cluster longer than a
// chunk) is set aside and inserted by probing the file at the end; the
// order of insertion does not matter to linear probing. Memory: four
// chunks.
func (x *diskIndex) grow() error {
	n := x.slots
	slots := 2 * n
	tmp := x.path + growSuffix
	nf, err := newTable(tmp, slots)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = nf.Close()
		_ = os.Remove(tmp)
		return err
	}
	c := min(x.growChunk, n)
	type entry struct{ h, off uint64 }
	var later []entry
	in := make([]byte, c*slotSize)
	win := [2][]byte{make([]byte, 2*c*slotSize), make([]byte, 2*c*slotSize)} // low, high
	// place puts e in window w, which covers new slots lo..lo+limit of its
	// half, reporting false when its probe would leave it.
	place := func(w []byte, lo, limit uint64, e entry, home uint64) bool {
		if home < lo || home >= lo+limit {
			return false
		}
		for i := home - lo; i < limit; i++ {
			if binary.LittleEndian.Uint64(w[i*slotSize:]) == 0 {
				binary.LittleEndian.PutUint64(w[i*slotSize:], e.h)
				binary.LittleEndian.PutUint64(w[i*slotSize+8:], e.off)
				return true
			}
		}
		return false
	}
	flush := func(chunk uint64) error { // the windows' first chunk is new chunk `chunk` of each half
		for half, w := range win {
			at := int64((uint64(half)*n + chunk*c) * slotSize)
			if _, err := nf.WriteAt(w[:c*slotSize], at); err != nil {
				return fmt.Errorf("payment provider: index: grow: %w", err)
			}
			copy(w, w[c*slotSize:])
			clear(w[c*slotSize:])
		}
		return nil
	}
	for j := uint64(0); j < n/c; j++ {
		// The windows hold chunks max(j-1, 0) and the next of each half.
		lo := max(j, 1)*c - c
		limit := min(2*c, n-lo)
		if _, err := x.f.ReadAt(in, int64(j*c*slotSize)); err != nil {
			return fail(fmt.Errorf("payment provider: index: grow: %w", err))
		}
		for i := 0; i < len(in); i += slotSize {
			e := entry{binary.LittleEndian.Uint64(in[i:]), binary.LittleEndian.Uint64(in[i+8:])}
			if e.h == 0 {
				continue
			}
			home := e.h & (slots - 1)
			half := home / n
			if !place(win[half], lo, limit, e, home-half*n) {
				later = append(later, e)
			}
		}
		if j > 0 {
			if err := flush(j - 1); err != nil {
				return fail(err)
			}
		}
	}
	if err := flush(n/c - 1); err != nil {
		return fail(err)
	}
	bigger := &diskIndex{f: nf, path: x.path, seed: x.seed, slots: slots, growChunk: x.growChunk}
	never := func(int64) (bool, error) { return false, nil } // entries are distinct
	for _, e := range later {
		_, slot, _, err := bigger.find(e.h, never)
		if err != nil {
			return fail(err)
		}
		if err := writeSlot(nf, slot, e.h, int64(e.off)); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, x.path); err != nil {
		return fail(fmt.Errorf("payment provider: index: grow: %w", err))
	}
	_ = x.f.Close()
	x.f, x.slots = nf, slots
	return nil
}
