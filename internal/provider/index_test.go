package provider

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestIndexFindsEveryNameAfterGrowing: starting from 16 slots, the index
// grows many times (wrapping probes around the table's end; with chunks
// one table, several, and so small that clusters cross them) and still
// finds every name it was given, with its latest offset, and no other.
func TestIndexFindsEveryNameAfterGrowing(t *testing.T) {
	for _, chunk := range []uint64{1 << 14, 64, 4} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) { testIndexGrows(t, chunk) })
	}
}

// testIndexGrows fills an index that grows a chunk of slots at a time.
func testIndexGrows(t *testing.T, chunk uint64) {
	x, err := openIndex(filepath.Join(t.TempDir(), IndexFile), 16)
	if err != nil {
		t.Fatal(err)
	}
	x.growChunk = chunk
	defer func() { _ = x.close() }()
	// The "journal": offset i holds name i (a match confirms it).
	var names []string
	is := func(name string) func(int64) (bool, error) {
		return func(off int64) (bool, error) { return names[off] == name, nil }
	}
	const n = 5000
	for i := range n {
		names = append(names, fmt.Sprintf("name-%d", i))
		if err := x.put(x.hash(kindKey, names[i]), int64(i), is(names[i])); err != nil {
			t.Fatal(err)
		}
	}
	// A second line for name 7 (the last line wins).
	names = append(names, "name-7")
	if err := x.put(x.hash(kindKey, "name-7"), n, is("name-7")); err != nil {
		t.Fatal(err)
	}
	if x.slots < 2*n || x.used != n {
		t.Fatalf("%d slots, %d used; want at least %d slots and %d used", x.slots, x.used, 2*n, n)
	}
	for i := range n {
		want := int64(i)
		if i == 7 {
			want = n
		}
		off, _, found, err := x.find(x.hash(kindKey, names[i]), is(names[i]))
		if err != nil || !found || off != want {
			t.Fatalf("%s: offset %d found %v err %v; want %d", names[i], off, found, err, want)
		}
	}
	for _, absent := range []string{"name-5000", "other"} {
		if _, _, found, err := x.find(x.hash(kindKey, absent), is(absent)); err != nil || found {
			t.Fatalf("%s: found %v err %v; want absent", absent, found, err)
		}
	}
	// The same name of another kind is another entry.
	if _, _, found, _ := x.find(x.hash(kindOrder, "name-1"), is("name-1")); found {
		t.Fatal("order name-1 found; only key name-1 was put")
	}
}
