package web_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/web"
)

// TestDemoPageForbidsFramingAndForeignScripts: the page carries a CSP
// allowing only same-origin scripts, styles and connections and no
// framing, and the page itself has nothing inline that the policy would
// block.
func TestDemoPageForbidsFramingAndForeignScripts(t *testing.T) {
	mux := http.NewServeMux()
	web.Register(mux, web.Config{})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /: %d", w.Code)
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "default-src 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
	if got := w.Header().Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", got)
	}
	page, err := fs.ReadFile(web.Assets(), "demo/index.html")
	if err != nil {
		t.Fatal(err)
	}
	inline := regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]|<style|\sstyle=|\son[a-z]+=`)
	if m := inline.Find(page); m != nil {
		t.Errorf("the page has inline code or style the CSP blocks: %q", m)
	}
}
