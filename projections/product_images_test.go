package projections_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/projections"
)

// TestProductSearchListsImages: images are listed oldest first, once per
// hash however often the event arrives, and a later upsert of the product
// keeps them; a product and its first image may share a batch.
func TestProductSearchListsImages(t *testing.T) {
	e := newEnv(t)
	p := projections.ProductSearch{}
	e.run(p)
	image := func(hash string) events.ProductImage {
		return events.ProductImage{SKU: "KITE-1", Hash: strings.Repeat(hash, 64), ContentType: "image/png", Width: 400, Height: 300, Bytes: 1234,
			URL:        "/v1/images/" + strings.Repeat(hash, 64) + "/original.png",
			Thumbnails: []events.Thumbnail{{Width: 160, Height: 120, URL: "/v1/images/" + strings.Repeat(hash, 64) + "/160.png"}}}
	}
	e.publish(events.ProductUpsertedV1, "KITE-1", events.Product{SKU: "KITE-1", Name: "Kite", Price: 1000, Currency: "EUR"})
	e.publish(events.ProductImageAddedV1, "KITE-1", image("a"))
	e.publish(events.ProductImageAddedV1, "KITE-1", image("b"))
	e.publish(events.ProductImageAddedV1, "KITE-1", image("a"))
	last := e.publish(events.ProductUpsertedV1, "KITE-1", events.Product{SKU: "KITE-1", Name: "Red kite", Price: 1100, Currency: "EUR"})
	e.waitFor(p, last)

	row := e.one(`SELECT name, images FROM public.product_search WHERE sku = 'KITE-1'`)
	if row["name"] != "Red kite" {
		t.Errorf("name %v", row["name"])
	}
	raw, _ := json.Marshal(row["images"])
	var got []map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["hash"] != strings.Repeat("a", 64) || got[1]["hash"] != strings.Repeat("b", 64) {
		t.Fatalf("images %s, want a then b, once each", raw)
	}
	if _, ok := got[0]["sku"]; ok {
		t.Errorf("an image element repeats the SKU: %s", raw)
	}
	if th, _ := got[0]["thumbnails"].([]any); len(th) != 1 {
		t.Errorf("thumbnails of a: %v", got[0]["thumbnails"])
	}
}
