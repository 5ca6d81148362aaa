package events

// Catalog context: products and their category tree, fed by a catalog
// service. (The file is products.go because catalog.go is the registry.)
//
// The aggregate id (CloudEvent subject) of a product event is its SKU, of a
// category event its category id: both are restricted by their schemas to
// [A-Za-z0-9_-] so that they are valid single NATS subject tokens.
var (
	// UpsertProductV1 is the command a catalog service sends to create or
	// update a product. Upserting a product makes its SKU known to
	// inventory (with no stock until restocked).
	UpsertProductV1 = register("catalog", "upsert_product", 1, Command)
	// UpsertCategoryV1 is the command that creates or updates a category.
	UpsertCategoryV1 = register("catalog", "upsert_category", 1, Command)
	// ProductUpsertedV1 records a product's current description.
	ProductUpsertedV1 = register("catalog", "product_upserted", 1, Event)
	// CategoryUpsertedV1 records a category's current name and parent.
	CategoryUpsertedV1 = register("catalog", "category_upserted", 1, Event)
	// AddProductImageV1 is the command the gateway sends after it stored an
	// uploaded image and its thumbnails in the image Object Store: the
	// bytes never travel in a message, only their address (the SHA-256)
	// and what was derived from them.
	AddProductImageV1 = register("catalog", "add_product_image", 1, Command)
	// ProductImageAddedV1 records that a product shows an image.
	ProductImageAddedV1 = register("catalog", "product_image_added", 1, Event)
)

// ProductImage is the data of AddProductImageV1 and ProductImageAddedV1:
// an image of product SKU, content-addressed by Hash (hex SHA-256 of the
// uploaded bytes), so the same bytes are the same image wherever and
// however often they are uploaded. URLs are paths on the gateway
// (/v1/images/<hash>/<file>), immutable once written.
type ProductImage struct {
	SKU         string `json:"sku"`
	Hash        string `json:"hash"`
	ContentType string `json:"content_type"` // image/jpeg, image/png or image/webp (sniffed)
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Bytes       int64  `json:"bytes"`
	URL         string `json:"url"` // the original
	// Thumbnails are the resized copies, narrowest first; never wider than
	// the original (a small original has fewer).
	Thumbnails []Thumbnail `json:"thumbnails"`
}

// Thumbnail is one resized copy of a ProductImage.
type Thumbnail struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	URL    string `json:"url"`
}

// Product is the data of UpsertProductV1 and ProductUpsertedV1. Price is
// in integer minor units of Currency.
type Product struct {
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	CategoryID  string `json:"category_id,omitempty"`
	Price       int64  `json:"price"`
	Currency    string `json:"currency"`
}

// Category is the data of UpsertCategoryV1 and CategoryUpsertedV1. The
// categories form a tree through ParentID ("" for a root); a child may
// arrive before its parent.
type Category struct {
	CategoryID string `json:"category_id"`
	ParentID   string `json:"parent_id,omitempty"`
	Name       string `json:"name"`
}
