package provider

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// openJournal replays the journal in dir into the working set (evicting
// as it goes), rebuilding the index, and opens it for appending.
func (s *Server) openJournal(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("payment provider: data dir: %w", err)
	}
	path := filepath.Join(dir, JournalFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("payment provider: journal: %w", err)
	}
	r, err := os.Open(path)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("payment provider: journal: %w", err)
	}
	x, err := openIndex(filepath.Join(dir, IndexFile), firstSlots)
	if err != nil {
		_ = f.Close()
		_ = r.Close()
		return err
	}
	s.journal, s.reader, s.index = f, r, x
	if err := s.replay(path); err != nil {
		_ = s.closeJournal()
		return err
	}
	return nil
}

func (s *Server) replay(path string) error {
	br := bufio.NewReaderSize(io.NewSectionReader(s.reader, 0, 1<<62), 64<<10)
	n, skipped := 0, 0
	var off int64
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			var l journalLine
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				// A torn last line (killed mid-write) was never answered.
				s.log.Warn("payment provider: skipping unreadable journal line", "offset", off, "err", jerr)
				skipped++
			} else if rerr := s.record(l, off); rerr != nil {
				return fmt.Errorf("payment provider: replay %s: %w", path, rerr)
			} else {
				n++
			}
			off += int64(len(b))
			if b[len(b)-1] != '\n' {
				// End the last line, so the next one appended is not glued
				// to it (and lost with it at the next start).
				if _, werr := s.journal.Write([]byte{'\n'}); werr != nil {
					return fmt.Errorf("payment provider: end the last journal line of %s: %w", path, werr)
				}
				off++
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("payment provider: read journal %s: %w", path, err)
		}
	}
	s.size = off
	s.log.Info("payment provider ledger loaded", "journal", path, "entries", n, "skipped", skipped,
		"authorizations_in_memory", len(s.auths), "max_in_memory", s.max)
	return nil
}

func (s *Server) closeJournal() error {
	var errs []error
	for _, c := range []io.Closer{s.journal, s.reader} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	if s.index != nil {
		errs = append(errs, s.index.close())
	}
	s.journal, s.reader, s.index = nil, nil, nil
	return errors.Join(errs...)
}

// write appends a line to the journal (under s.mu) and returns its
// offset. The write reaches the OS before the answer is sent, so a killed
// process loses nothing it answered.
func (s *Server) write(l journalLine) (int64, error) {
	if s.journal == nil {
		return 0, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return 0, err
	}
	off := s.size
	n, err := s.journal.Write(append(b, '\n'))
	s.size += int64(n)
	if err != nil && n > 0 {
		// End the torn line, so the next one is readable.
		if m, werr := s.journal.Write([]byte{'\n'}); werr == nil {
			s.size += int64(m)
		}
	}
	return off, err
}

// readLine reads the journal line at off.
func (s *Server) readLine(off int64) (journalLine, error) {
	var l journalLine
	buf := make([]byte, 0, 1024)
	chunk := make([]byte, 1024)
	for at := off; ; {
		n, err := s.reader.ReadAt(chunk, at)
		if i := bytes.IndexByte(chunk[:n], '\n'); i >= 0 {
			buf = append(buf, chunk[:i]...)
			break
		}
		buf = append(buf, chunk[:n]...)
		at += int64(n)
		if err != nil {
			return l, fmt.Errorf("payment provider: journal line at %d: %w", off, err)
		}
		if len(buf) > maxLineSize {
			return l, fmt.Errorf("payment provider: journal line at %d: longer than %d bytes", off, maxLineSize)
		}
	}
	if err := json.Unmarshal(buf, &l); err != nil {
		return l, fmt.Errorf("payment provider: journal line at %d: %w", off, err)
	}
	return l, nil
}

// scanAuths streams the authorizations of the journal's lines, up to
// size, to fn, oldest line first. Only lines containing want (nil: any)
// are decoded, and of them only the authorization.
func scanAuths(r *os.File, size int64, want []byte, fn func(Authorization)) error {
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10)
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: read the rest of it.
			long := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		var l struct {
			Auth *Authorization `json:"auth"`
		}
		if len(b) > 0 && (want == nil || bytes.Contains(b, want)) && json.Unmarshal(b, &l) == nil && l.Auth != nil {
			fn(*l.Auth)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("payment provider: scan journal: %w", err)
		}
	}
}

// matcher confirms that the journal line at an offset is about the name
// the index was asked for.
func (s *Server) matcher(kind byte, name string) func(off int64) (bool, error) {
	return func(off int64) (bool, error) {
		l, err := s.readLine(off)
		if err != nil {
			return false, err
		}
		switch kind {
		case kindKey:
			return l.Key == name, nil
		case kindAuth:
			return l.Auth != nil && l.Auth.ID == name, nil
		default:
			return l.Auth != nil && l.Auth.OrderID == name, nil
		}
	}
}

// lookup returns the journal offset the index holds for a name.
func (s *Server) lookup(kind byte, name string) (int64, bool, error) {
	off, _, found, err := s.index.find(s.index.hash(kind, name), s.matcher(kind, name))
	return off, found, err
}

// record indexes the journal line at off (when a journal is open) and
// applies it to the working set, evicting what no longer fits.
func (s *Server) record(l journalLine, off int64) error {
	newOrder := false // l makes the first authorization of its order
	var a *Authorization
	if l.Auth != nil {
		c := *l.Auth
		a = &c
		if _, resident := s.auths[a.ID]; !resident {
			if _, listed := s.byOrder[a.OrderID]; !listed {
				newOrder = !s.evicted
				if s.evicted {
					// A new authorization (live), or one evicted by an
					// earlier line (in a replay): either way its order is
					// new only if the index never saw it.
					_, seen, err := s.lookup(kindOrder, a.OrderID)
					if err != nil {
						return err
					}
					newOrder = !seen
				}
			}
		}
	}
	if s.index != nil {
		x := s.index
		if err := x.put(x.hash(kindKey, l.Key), off, s.matcher(kindKey, l.Key)); err != nil {
			return err
		}
		if a != nil {
			if err := x.put(x.hash(kindAuth, a.ID), off, s.matcher(kindAuth, a.ID)); err != nil {
				return err
			}
			if newOrder {
				if err := x.put(x.hash(kindOrder, a.OrderID), off, s.matcher(kindOrder, a.OrderID)); err != nil {
					return err
				}
			}
		}
	}
	if old, ok := s.idem[l.Key]; ok { // only in a journal written twice for a key: the last line wins
		old.it.keys = slices.DeleteFunc(old.it.keys, func(k string) bool { return k == l.Key })
	}
	var it *item
	if a == nil {
		it = s.admit(&item{})
	} else {
		if it = s.auths[a.ID]; it != nil {
			s.lru.MoveToFront(it.elem)
		} else {
			wasListed := s.byOrder[a.OrderID] != nil
			it = s.admit(&item{seq: s.seq})
			s.seq++
			s.auths[a.ID] = it
			if newOrder {
				s.byOrder[a.OrderID] = []string{a.ID}
			} else if wasListed {
				// A new authorization of a listed order (a listed order's
				// authorizations are all resident, so it cannot be a
				// re-admitted one).
				s.byOrder[a.OrderID] = append(s.byOrder[a.OrderID], a.ID)
			}
		}
		it.auth = a
	}
	it.keys = append(it.keys, l.Key)
	s.idem[l.Key] = keyEntry{rec: l.Rec, it: it}
	s.shrink()
	return nil
}

// admit puts a new entry at the front of the working set (the caller
// calls shrink once it is filled in).
func (s *Server) admit(it *item) *item {
	it.elem = s.lru.PushFront(it)
	return it
}

// shrink evicts the least recently touched entries beyond the bound.
func (s *Server) shrink() {
	for s.max > 0 && s.lru.Len() > s.max {
		it := s.lru.Remove(s.lru.Back()).(*item)
		for _, k := range it.keys {
			delete(s.idem, k)
		}
		if it.auth != nil {
			delete(s.auths, it.auth.ID)
			delete(s.byOrder, it.auth.OrderID)
		}
		s.evicted = true
	}
}

// key returns the idempotency record of key, re-admitting it from the
// journal if it was evicted.
func (s *Server) key(key string) (record, bool, error) {
	if e, ok := s.idem[key]; ok {
		s.lru.MoveToFront(e.it.elem)
		return e.rec, true, nil
	}
	if !s.evicted {
		return record{}, false, nil
	}
	off, found, err := s.lookup(kindKey, key)
	if err != nil || !found {
		return record{}, false, err
	}
	l, err := s.readLine(off)
	if err != nil {
		return record{}, false, err
	}
	var it *item
	if l.Auth == nil {
		it = s.admit(&item{})
	} else if it, err = s.authorization(l.Auth.ID); err != nil {
		return record{}, false, err
	} else if it == nil {
		return record{}, false, fmt.Errorf("payment provider: authorization %s of key %q not in the index", l.Auth.ID, key)
	}
	it.keys = append(it.keys, key)
	s.idem[key] = keyEntry{rec: l.Rec, it: it}
	s.shrink()
	return l.Rec, true, nil
}

// authorization returns the entry of authorization id (nil: never made),
// re-admitting it from the journal if it was evicted.
func (s *Server) authorization(id string) (*item, error) {
	if it, ok := s.auths[id]; ok {
		s.lru.MoveToFront(it.elem)
		return it, nil
	}
	if !s.evicted {
		return nil, nil
	}
	off, found, err := s.lookup(kindAuth, id)
	if err != nil || !found {
		return nil, err
	}
	l, err := s.readLine(off)
	if err != nil {
		return nil, err
	}
	it := s.admit(&item{auth: l.Auth})
	s.auths[id] = it
	s.shrink()
	return it, nil
}

// orderAuthorizations returns copies of the authorizations made for an
// order, oldest first. An order not listed in memory after evictions is
// looked up in the index, and if it was ever seen, the journal is scanned
// (under s.mu) and its authorizations re-admitted.
func (s *Server) orderAuthorizations(orderID string) ([]Authorization, error) {
	if ids, ok := s.byOrder[orderID]; ok || !s.evicted {
		out := make([]Authorization, len(ids))
		for i, id := range ids {
			it := s.auths[id]
			s.lru.MoveToFront(it.elem)
			out[i] = *it.auth
		}
		return out, nil
	}
	if _, seen, err := s.lookup(kindOrder, orderID); err != nil || !seen {
		return nil, err
	}
	// The order id as the journal spells it: a line without it is skipped
	// undecoded.
	quoted, err := json.Marshal(orderID)
	if err != nil {
		return nil, fmt.Errorf("payment provider: order id: %w", err)
	}
	var out []Authorization
	at := map[string]int{}
	err = scanAuths(s.reader, s.size, append([]byte(`"order_id":`), quoted...), func(a Authorization) {
		if a.OrderID != orderID {
			return
		}
		if i, ok := at[a.ID]; ok {
			out[i] = a
			return
		}
		at[a.ID] = len(out)
		out = append(out, a)
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(out))
	for i, a := range out {
		ids[i] = a.ID
		if it, ok := s.auths[a.ID]; ok {
			s.lru.MoveToFront(it.elem)
		} else {
			c := a
			s.auths[a.ID] = s.admit(&item{auth: &c})
		}
	}
	s.shrink()
	resident := true
	for _, id := range ids {
		_, ok := s.auths[id]
		resident = resident && ok
	}
	if resident { // not when the order has more authorizations than the bound
		s.byOrder[orderID] = ids
	}
	return out, nil
}

// ledger returns every authorization, oldest first, with totals: from
// memory while nothing was evicted, else streamed from the journal as it
// stood when called (outside s.mu).
func (s *Server) ledger() (Ledger, error) {
	l := Ledger{Totals: Totals{ByStatus: map[string]int{}}}
	s.mu.Lock()
	if !s.evicted {
		type made struct {
			seq  uint64
			auth Authorization
		}
		all := make([]made, 0, len(s.auths))
		for _, it := range s.auths {
			all = append(all, made{it.seq, *it.auth})
		}
		s.mu.Unlock()
		slices.SortFunc(all, func(a, b made) int { return cmp.Compare(a.seq, b.seq) })
		l.Authorizations = make([]Authorization, len(all))
		for i, m := range all {
			l.Authorizations[i] = m.auth
		}
		return totals(l), nil
	}
	r, size := s.reader, s.size
	s.mu.Unlock()
	at := map[string]int{}
	err := scanAuths(r, size, nil, func(a Authorization) {
		if i, ok := at[a.ID]; ok {
			l.Authorizations[i] = a
			return
		}
		at[a.ID] = len(l.Authorizations)
		l.Authorizations = append(l.Authorizations, a)
	})
	if err != nil {
		return Ledger{}, err
	}
	if l.Authorizations == nil {
		l.Authorizations = []Authorization{}
	}
	return totals(l), nil
}

func totals(l Ledger) Ledger {
	for _, a := range l.Authorizations {
		l.Totals.ByStatus[a.Status]++
		l.Totals.CapturedAmount += a.Captured
		l.Totals.RefundedAmount += a.Refunded
	}
	return l
}
