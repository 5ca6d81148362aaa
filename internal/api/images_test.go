package api_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/api"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/images"
	"github.com/tradewind/tradewind/internal/sagatest"
)

// pngOf is a w×h PNG with a gradient (opaque) or a transparent corner.
func pngOf(t testing.TB, w, h int, transparent bool) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if transparent && x < w/4 && y < h/4 {
				a = 0
			}
			m.SetNRGBA(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 90, A: a})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload posts file as the multipart field "image", named name.
func (g *gateway) upload(t testing.TB, bearer, sku, name string, file []byte) response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("image", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(file)
	_ = mw.Close()
	return g.do(t, bearer, request{path: "/v1/products/" + sku + "/images", body: body.String(), noKey: true,
		header: map[string]string{"Content-Type": mw.FormDataContentType()}})
}

// TestAnImageIsUploadedAndServed is issue 13's test of images against the
// whole path: the gateway stores the image and its thumbnails in the
// Object Store, the inventory participant turns the command into
// catalog.product_image_added, the catalogue read model lists it; the
// files are served publicly with immutable caching. A renamed executable,
// an oversized file and an unknown SKU are refused with problems, and the
// same bytes uploaded again add no second event.
func TestAnImageIsUploadedAndServed(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{})
	runProjections(t, s)
	keys, err := auth.NewKeys(s.Pool)
	if err != nil {
		t.Fatal(err)
	}
	sys := &system{t: t, js: s.JS, keys: keys, pool: s.Pool}
	gw := sys.gateway()
	sku := "KITE-" + uuid.NewString()[:8]
	s.Publish(events.UpsertProductV1, events.Product{SKU: sku, Name: "Kite", Price: 1000, Currency: "EUR"})
	s.Eventually(wait, "the catalog read model has the product", func() bool {
		var n int
		s.Query(&n, `SELECT count(*) FROM public.product_search WHERE sku = $1`, sku)
		return n == 1
	})
	ops := userToken(t, "ops-1", auth.RoleOps)

	t.Run("refusals", func(t *testing.T) {
		elf := append([]byte("\x7fELF\x02\x01\x01\x00"), bytes.Repeat([]byte{0}, 200)...)
		mz := append([]byte("MZ\x90\x00\x03\x00\x00\x00"), bytes.Repeat([]byte{0}, 200)...)
		for _, exe := range [][]byte{elf, mz} {
			res := gw.upload(t, ops, sku, "x.png", exe)
			if res.status != http.StatusUnsupportedMediaType {
				t.Fatalf("a renamed executable: %d %s", res.status, res.body)
			}
			if p := res.problem(t); !strings.HasSuffix(p.Type, "/unsupported-image-type") || !strings.Contains(p.Detail, "JPEG, PNG and WebP") {
				t.Errorf("problem %+v", p)
			}
		}
		big := append(pngOf(t, 8, 8, false), bytes.Repeat([]byte{0}, images.MaxBytes)...)
		if res := gw.upload(t, ops, sku, "big.png", big); res.status != http.StatusRequestEntityTooLarge || !strings.HasSuffix(res.problem(t).Type, "/image-too-large") {
			t.Errorf("an oversized image: %d %s", res.status, res.body)
		}
		if res := gw.upload(t, ops, "NO-SUCH-SKU", "a.png", pngOf(t, 8, 8, false)); res.status != http.StatusNotFound {
			t.Errorf("an unknown SKU: %d %s", res.status, res.body)
		}
		customer := userToken(t, "c-1", auth.RoleCustomer)
		if res := gw.upload(t, customer, sku, "a.png", pngOf(t, 8, 8, false)); res.status != http.StatusForbidden {
			t.Errorf("a customer: %d %s", res.status, res.body)
		}
		if res := gw.upload(t, "", sku, "a.png", pngOf(t, 8, 8, false)); res.status != http.StatusUnauthorized {
			t.Errorf("no credentials: %d %s", res.status, res.body)
		}
	})

	file := pngOf(t, 400, 300, true)
	res := gw.upload(t, sys.apiKey(auth.ScopeCatalogWrite), sku, "kite.jpeg", file)
	if res.status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", res.status, res.body)
	}
	var acc api.ImageAccepted
	decodeJSON(t, res.body, &acc)
	im := acc.Image
	if im.ContentType != "image/png" || im.Width != 400 || im.Height != 300 || im.Bytes != int64(len(file)) || acc.Location != "/v1/products/"+sku {
		t.Fatalf("accepted %+v", acc)
	}
	// 400 px wide: the 160 and 320 thumbnails, not 640 (no upscale); PNG,
	// since the original has transparency.
	if len(im.Thumbnails) != 2 || im.Thumbnails[0].Width != 160 || im.Thumbnails[0].Height != 120 ||
		im.Thumbnails[1].Width != 320 || !strings.HasSuffix(im.Thumbnails[1].URL, "/320.png") {
		t.Fatalf("thumbnails %+v", im.Thumbnails)
	}

	t.Run("served", func(t *testing.T) {
		th := gw.do(t, "", request{method: http.MethodGet, path: im.Thumbnails[0].URL, noKey: true})
		if th.status != http.StatusOK || th.header.Get("Content-Type") != "image/png" ||
			th.header.Get("Cache-Control") != "public, max-age=31536000, immutable" || th.header.Get("ETag") == "" {
			t.Fatalf("thumbnail: %d %v", th.status, th.header)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(th.body))
		if err != nil || cfg.Width != 160 || cfg.Height != 120 {
			t.Fatalf("the thumbnail is %+v, %v", cfg, err)
		}
		again := gw.do(t, "", request{method: http.MethodGet, path: im.Thumbnails[0].URL, noKey: true,
			header: map[string]string{"If-None-Match": th.header.Get("ETag")}})
		if again.status != http.StatusNotModified || len(again.body) != 0 {
			t.Errorf("If-None-Match: %d", again.status)
		}
		orig := gw.do(t, "", request{method: http.MethodGet, path: im.URL, noKey: true})
		if orig.status != http.StatusOK || !bytes.Equal(orig.body, file) {
			t.Errorf("the original: %d, %d bytes", orig.status, len(orig.body))
		}
		if nf := gw.do(t, "", request{method: http.MethodGet, path: "/v1/images/" + strings.Repeat("0", 64) + "/160.jpg", noKey: true}); nf.status != http.StatusNotFound {
			t.Errorf("an unknown image: %d", nf.status)
		}
	})

	s.Eventually(wait, "the read model lists the image", func() bool {
		var n int
		s.Query(&n, `SELECT jsonb_array_length(images) FROM public.product_search WHERE sku = $1`, sku)
		return n == 1
	})
	var listed []events.ProductImage
	var raw []byte
	s.Query(&raw, `SELECT images FROM public.product_search WHERE sku = $1`, sku)
	if err := json.Unmarshal(raw, &listed); err != nil || len(listed) != 1 || listed[0].Hash != im.Hash || len(listed[0].Thumbnails) != 2 {
		t.Fatalf("listed %s: %v", raw, err)
	}

	// The same bytes again: the same command, no second event.
	res2 := gw.upload(t, ops, sku, "copy.png", file)
	var acc2 api.ImageAccepted
	decodeJSON(t, res2.body, &acc2)
	if res2.status != http.StatusAccepted || acc2.CommandID != acc.CommandID || acc2.Position != acc.Position {
		t.Fatalf("again: %d %+v, first %+v", res2.status, acc2, acc)
	}
	// A second image after it: once it is listed, the first was not
	// listed twice (the events are projected in order).
	second := pngOf(t, 100, 100, false)
	if r := gw.upload(t, ops, sku, "small.png", second); r.status != http.StatusAccepted {
		t.Fatalf("second image: %d %s", r.status, r.body)
	}
	s.Eventually(wait, "the read model lists the second image", func() bool {
		var n int
		s.Query(&n, `SELECT jsonb_array_length(images) FROM public.product_search WHERE sku = $1`, sku)
		return n >= 2
	})
	var n int
	s.Query(&n, `SELECT jsonb_array_length(images) FROM public.product_search WHERE sku = $1`, sku)
	if n != 2 {
		t.Fatalf("%d images listed, want 2", n)
	}
	if c := streamCount(t, s, "evt.catalog.product_image_added."+sku); c != 2 {
		t.Fatalf("%d product_image_added events, want 2", c)
	}
}

// streamCount counts EVENTS messages on subject.
func streamCount(t *testing.T, s *sagatest.System, subject string) uint64 {
	t.Helper()
	st, err := s.JS.Stream(t.Context(), broker.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}
