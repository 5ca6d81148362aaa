package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/images"
)

// ImageStore keeps product images; images.Store implements it.
type ImageStore interface {
	Save(ctx context.Context, img *images.Image) error
	Get(ctx context.Context, hash, file string) ([]byte, string, error)
}

// Image routes. Uploads are not in the commands table: the body is an
// image, not a command's JSON, and the command is built from what the
// gateway derives from the image.
const (
	routeUploadImage = "POST /v1/products/{sku}/images"
	routeGetImage    = "GET /v1/images/{hash}/{file}"
	// imageFormField is the multipart field holding the file.
	imageFormField = "image"
	// multipartSlack is what the multipart framing may add to an image.
	multipartSlack = 64 << 10
)

// ImageAccepted is the body of an upload's 202: the command's answer and
// the image as its event will record it.
type ImageAccepted struct {
	Accepted
	Image events.ProductImage `json:"image"`
}

// skuRE is the SKU of the catalog's schemas (an aggregate id).
var skuRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// imageNamespace derives the command id of an image upload from (SKU,
// hash).
var imageNamespace = uuid.MustParse("5c0d1e7a-8f42-4b6e-9a3c-1d2e4f6a8b0c")

// uploadImage is POST /v1/products/{sku}/images (multipart/form-data, the
// file in the field "image"), for callers with catalog:write (API keys,
// ops tokens).
//
// The catalog's writes go through commands that the inventory participant
// turns into events (it owns evt.catalog.>; the gateway may publish only
// commands), so this mirrors POST /v1/products: it stores the bytes and
// thumbnails in the Object Store first (so that a 202 names only images
// that exist), then publishes catalog.add_product_image and answers 202
// after JetStream's ack. No Idempotency-Key: the command id is derived
// from (SKU, SHA-256 of the bytes), so the same image uploaded again is
// the same command, which JetStream's duplicate window and the inbox drop
// — never a second event.
//
// Hazard: the SKU is checked against the catalog read model, which trails
// the catalog: a product created a moment ago may still be 404.
func (s *Server) uploadImage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, ok := s.allowed(w, r, auth.ScopeCatalogWrite)
	if !ok {
		return
	}
	if acc := r.Header.Get("Accept"); acc != "" && !acceptsJSON(acc) {
		writeProblem(w, r, problem(http.StatusNotAcceptable, "not-acceptable", "Not acceptable",
			"responses are application/json or application/problem+json").header("Accept"))
		return
	}
	if !s.allow(w, r, p, "catalog") {
		return
	}
	sku := r.PathValue("sku")
	if !skuRE.MatchString(sku) {
		writeProblem(w, r, problem(http.StatusNotFound, "unknown-sku", "Unknown SKU",
			"a SKU is 1 to 64 letters, digits, '_' and '-'").field("/sku", "path"))
		return
	}
	known, err := s.d.Catalog.Prices(ctx, []string{sku})
	if err != nil {
		s.log.Warn("catalog unavailable", "request_id", requestIDFrom(ctx), "err", err)
		writeProblem(w, r, unavailable("the catalog cannot be read right now; the image was not accepted"))
		return
	}
	if _, ok := known[sku]; !ok {
		writeProblem(w, r, problem(http.StatusNotFound, "unknown-sku", "Unknown SKU",
			fmt.Sprintf("the catalog has no product %s (a product created a moment ago may take a moment to appear)", sku)).field("/sku", "path"))
		return
	}
	data, prob := readImage(w, r)
	if prob != nil {
		writeProblem(w, r, prob)
		return
	}
	img, err := images.Process(data)
	switch {
	case errors.Is(err, images.ErrUnsupported):
		writeProblem(w, r, problem(http.StatusUnsupportedMediaType, "unsupported-image-type", "Unsupported image type",
			err.Error()+"; only JPEG, PNG and WebP images are accepted, recognised by their content (the file's name and declared type are ignored)"))
		return
	case errors.Is(err, images.ErrInvalid):
		writeProblem(w, r, problem(http.StatusUnprocessableEntity, "invalid-image", "Invalid image", err.Error()))
		return
	case err != nil:
		panic(fmt.Sprintf("process image: %v", err)) // an encoder failure: 500
	}
	if !s.d.Publisher.Connected() {
		writeProblem(w, r, unavailable("the message broker is unreachable; the image was not accepted"))
		return
	}
	// From here the outcome must be recorded even if the client leaves.
	ctx = context.WithoutCancel(ctx)
	if err := s.d.Images.Save(ctx, img); err != nil {
		s.log.Warn("image store failed", "request_id", requestIDFrom(ctx), "err", err)
		writeProblem(w, r, unavailable("the image store cannot take the image now; retry"))
		return
	}
	ev := imageEvent(sku, img)
	doc := map[string]any{}
	raw, _ := json.Marshal(ev)
	_ = json.Unmarshal(raw, &doc)
	if prob := validate(events.AddProductImageV1, doc, nil); prob != nil {
		panic(fmt.Sprintf("image command breaks its schema: %s", prob.Detail)) // a bug: 500
	}
	cmdID := uuid.NewSHA1(imageNamespace, []byte(sku+"\x00"+img.Hash)).String()
	cmd, err := events.New(events.AddProductImageV1, sku, json.RawMessage(raw),
		events.WithID(cmdID),
		events.WithSource("/tradewind/api/"+url.PathEscape(p.Caller)),
		events.WithCorrelation(correlationIDFrom(ctx)),
		events.WithTraceparent(traceparentFrom(ctx)))
	if err != nil {
		panic(fmt.Sprintf("build command %s: %v", events.AddProductImageV1, err))
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	ack, err := s.d.Publisher.Publish(pctx, cmd)
	cancel()
	if err != nil {
		s.log.Warn("command not acknowledged", "request_id", requestIDFrom(ctx), "command_id", cmdID, "type", events.AddProductImageV1, "err", err)
		writeProblem(w, r, unavailable("the message broker did not acknowledge the image; retry (the same image is the same command)"))
		return
	}
	pos := ack.Stream + ":" + strconv.FormatUint(ack.Sequence, 10)
	loc := "/v1/products/" + url.PathEscape(sku)
	body, _ := json.Marshal(ImageAccepted{
		Accepted: Accepted{Status: "accepted", ID: sku, CommandID: cmdID, Type: events.AddProductImageV1, Position: pos, Location: loc},
		Image:    ev,
	})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Location", loc)
	h.Set(HeaderPosition, pos)
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(append(body, '\n'))
}

// readImage reads the multipart field "image", at most images.MaxBytes.
func readImage(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"send multipart/form-data with the file in the field "+strconv.Quote(imageFormField)).header("Content-Type")
	}
	tooLarge := problem(http.StatusRequestEntityTooLarge, "image-too-large", "Image too large",
		fmt.Sprintf("an image may have at most %d bytes", images.MaxBytes))
	if r.ContentLength > images.MaxBytes+multipartSlack {
		return nil, tooLarge
	}
	r.Body = http.MaxBytesReader(w, r.Body, images.MaxBytes+multipartSlack)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, problem(http.StatusBadRequest, "malformed-body", "Malformed request body", err.Error())
	}
	for {
		part, err := mr.NextPart()
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, tooLarge
		case errors.Is(err, io.EOF):
			return nil, problem(http.StatusBadRequest, "image-missing", "Image missing",
				"the form has no file field "+strconv.Quote(imageFormField))
		case err != nil:
			return nil, problem(http.StatusBadRequest, "malformed-body", "Malformed request body", err.Error())
		}
		if part.FormName() != imageFormField {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, images.MaxBytes+1))
		switch {
		case errors.As(err, &mbe) || len(b) > images.MaxBytes:
			return nil, tooLarge
		case err != nil:
			return nil, problem(http.StatusBadRequest, "malformed-body", "Malformed request body", err.Error())
		case len(b) == 0:
			return nil, problem(http.StatusBadRequest, "image-missing", "Image missing", "the file is empty")
		}
		return b, nil
	}
}

// imageEvent is the data of the command (and of its event).
func imageEvent(sku string, img *images.Image) events.ProductImage {
	o := img.Original
	ev := events.ProductImage{SKU: sku, Hash: img.Hash, ContentType: o.ContentType, Width: o.Width, Height: o.Height,
		Bytes: int64(len(o.Data)), URL: images.URL(img.Hash, o.File), Thumbnails: []events.Thumbnail{}}
	for _, t := range img.Thumbnails {
		ev.Thumbnails = append(ev.Thumbnails, events.Thumbnail{Width: t.Width, Height: t.Height, URL: images.URL(img.Hash, t.File)})
	}
	return ev
}

// immutable is the Cache-Control of an image: its URL names its bytes.
const immutable = "public, max-age=31536000, immutable"

// getImage is GET /v1/images/{hash}/{file}: public (product images are
// public catalog data), content-addressed, cacheable forever.
func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	hash, file := r.PathValue("hash"), r.PathValue("file")
	if !images.ValidName(hash, file) {
		writeProblem(w, r, problem(http.StatusNotFound, "not-found", "Not found", "no such image"))
		return
	}
	etag := `"` + hash + "/" + file + `"`
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", immutable)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	b, ct, err := s.d.Images.Get(r.Context(), hash, file)
	switch {
	case errors.Is(err, images.ErrNotFound):
		writeProblem(w, r, problem(http.StatusNotFound, "not-found", "Not found", "no such image"))
		return
	case err != nil:
		s.log.Warn("image store failed", "request_id", requestIDFrom(r.Context()), "err", err)
		writeProblem(w, r, unavailable("the image store cannot be read right now"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("ETag", etag)
	h.Set("Cache-Control", immutable)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b) //nolint:gosec // stored images only: sniffed and re-checked on upload, served as their image type with nosniff and a CSP that runs nothing
}

// etagMatches is If-None-Match's weak comparison against one strong tag.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
