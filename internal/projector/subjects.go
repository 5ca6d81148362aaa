package projector

import "strings"

// Pure decisions of the group: which subjects its one consumer reads, and
// which of a batch's events each projection receives.

// subjectMatches reports whether the NATS subject s matches filter f
// ("*" one token, ">" one or more trailing tokens). It allocates nothing:
// a batch routes every event through every member's filters.
func subjectMatches(f, s string) bool {
	for {
		ft, frest, fmore := strings.Cut(f, ".")
		if ft == ">" {
			return true // the loop goes on only while s has a token left
		}
		st, srest, smore := strings.Cut(s, ".")
		if ft != "*" && ft != st {
			return false
		}
		if !fmore || !smore {
			return fmore == smore
		}
		f, s = frest, srest
	}
}

// filterCovers reports whether every subject filter a matches is matched
// by filter b too.
func filterCovers(b, a string) bool {
	bt, at := strings.Split(b, "."), strings.Split(a, ".")
	for i, t := range bt {
		if t == ">" {
			return len(at) > i
		}
		if i >= len(at) || at[i] == ">" {
			return false
		}
		if t != "*" && (at[i] == "*" || t != at[i]) {
			return false
		}
	}
	return len(bt) == len(at)
}

// unionSubjects is the union of the projections' filters without
// duplicates or filters another covers (JetStream refuses a consumer whose
// filters overlap), in first-seen order.
func unionSubjects(sets [][]string) []string {
	var all []string
	for _, s := range sets {
		all = append(all, s...)
	}
	var out []string
	for i, f := range all {
		covered := false
		for j, g := range all {
			// g covers f, and f is not the earlier of two equal filters.
			if i != j && filterCovers(g, f) && (!filterCovers(f, g) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, f)
		}
	}
	return out
}

// route gives each projection (by its filters, sets[i]) its own copy of
// the events of evs whose NATS subject one of its filters matches, in
// stream order. Copies: Prepare writes Event.Prepared per projection.
func route(evs []Event, sets [][]string) [][]Event {
	out := make([][]Event, len(sets))
	for i, filters := range sets {
		for _, ev := range evs {
			for _, f := range filters {
				if subjectMatches(f, ev.natsSubject) {
					out[i] = append(out[i], ev)
					break
				}
			}
		}
	}
	return out
}
