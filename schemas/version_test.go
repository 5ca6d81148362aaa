package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"sort"
	"testing"
)

// versionDigests records, per released Version, the digest of the schemas
// it was released with (contractDigest). Add a line when bumping Version;
// never change a line.
var versionDigests = map[string]string{
	"1.0.0": "725be1eaec2727199344ec98e6f1d6a1551c29c0a7ae3bb691a48d8477355097",
}

// contractDigest is a SHA-256 over every schema file's name and its JSON
// re-encoded canonically (sorted keys, no insignificant whitespace), so
// reformatting a file changes nothing and any other edit changes it.
func contractDigest(t *testing.T) string {
	t.Helper()
	names, err := fs.Glob(FS(), "*.json")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		raw, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // numbers keep their digits
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		canonical, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write(canonical)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestVersionIsBumpedWithTheSchemas fails when a schema changed but
// Version did not, so the client package released as Version always has
// the types of exactly these schemas.
func TestVersionIsBumpedWithTheSchemas(t *testing.T) {
	got := contractDigest(t)
	want, ok := versionDigests[Version]
	if !ok {
		t.Fatalf("schemas.Version %s has no recorded digest: add %q: %q to versionDigests", Version, Version, got)
	}
	if got != want {
		t.Fatalf("the schemas differ from those released as %s: bump schemas.Version (and web/client/package.json's version), "+
			"then record the new version's digest %q in versionDigests", Version, got)
	}
}
