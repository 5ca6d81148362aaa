package inventory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers/inventory"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestAnImageOfAKnownProductBecomesAnEvent: the command of a product the
// catalog has becomes catalog.product_image_added with the same data; one
// of an unknown SKU is dead-lettered (permanent).
func TestAnImageOfAKnownProductBecomesAnEvent(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	sku := "IMG-" + uuid.NewString()[:8]
	if _, err := tx.Exec(ctx, `INSERT INTO inventory.products (sku, name, price, currency, updated_at) VALUES ($1, 'Kite', 100, 'EUR', now())`, sku); err != nil {
		t.Fatal(err)
	}
	image := func(sku string) events.ProductImage {
		h := strings.Repeat("d", 64)
		return events.ProductImage{SKU: sku, Hash: h, ContentType: "image/webp", Width: 50, Height: 50, Bytes: 99,
			URL: "/v1/images/" + h + "/original.webp", Thumbnails: []events.Thumbnail{}}
	}
	cmd, err := events.New(events.AddProductImageV1, sku, image(sku))
	if err != nil {
		t.Fatal(err)
	}
	out, err := inventory.AddProductImage{}.Handle(ctx, tx, cmd)
	if err != nil || len(out) != 1 || out[0].Type() != events.ProductImageAddedV1 || out[0].Subject() != sku {
		t.Fatalf("emitted %v, %v", out, err)
	}
	var got events.ProductImage
	if err := events.DecodeData(out[0], &got); err != nil || got.Hash != image(sku).Hash || got.ContentType != "image/webp" {
		t.Fatalf("event data %+v, %v", got, err)
	}

	unknown, err := events.New(events.AddProductImageV1, "NO-SUCH-SKU", image("NO-SUCH-SKU"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := (inventory.AddProductImage{}).Handle(ctx, tx, unknown); !runner.IsPermanent(err) || out != nil {
		t.Fatalf("an unknown SKU: %v, %v", out, err)
	}
}
