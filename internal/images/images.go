// Package images holds product images: what the catalog accepts (JPEG,
// PNG and WebP, recognised by their bytes, never by a name or a declared
// type), the thumbnails made on upload, and the NATS Object Store bucket
// that keeps them (broker.ImageBucket), content-addressed by the SHA-256
// of the uploaded bytes.
//
// Decoding uses the standard library and golang.org/x/image (webp decode
// only, draw for resizing); nothing here is hand-written image code.
//
// Hazards: a small file can declare a huge canvas (a decompression bomb),
// so Process reads the header first and refuses more than MaxPixels
// before decoding. Objects are immutable: a name, once written, always
// holds the same bytes, so Store never replaces one (and needs no purge
// right on the bucket).
package images

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"net/http"
	"regexp"
	"strconv"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// MaxBytes bounds an uploaded image.
const MaxBytes = 5 << 20

// MaxPixels bounds an image's canvas (width × height), checked before it
// is decoded.
const MaxPixels = 40_000_000

// Widths are the thumbnails' widths, narrowest first; an image gets those
// narrower than itself (never an upscale).
var Widths = []int{160, 320, 640}

// Accepted content types (as net/http.DetectContentType names them) and
// the extension their files get.
var accepted = map[string]string{"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}

// ErrUnsupported: the bytes are not an image type the catalog accepts.
var ErrUnsupported = errors.New("not a JPEG, PNG or WebP image")

// ErrInvalid: the bytes start like an accepted type but do not decode, or
// the canvas is too large.
var ErrInvalid = errors.New("invalid image")

// Sniff returns the content type the bytes are, by content sniffing, and
// whether the catalog accepts it.
func Sniff(b []byte) (contentType string, ok bool) {
	ct := http.DetectContentType(b)
	_, ok = accepted[ct]
	return ct, ok
}

// Variant is one stored file of an image: the original or a thumbnail.
type Variant struct {
	File        string // "original.<ext>" or "<width>.<jpg|png>"
	ContentType string
	Width       int
	Height      int
	Data        []byte
}

// Image is an upload, checked and with its thumbnails.
type Image struct {
	Hash       string // hex SHA-256 of the original bytes
	Original   Variant
	Thumbnails []Variant // narrowest first
}

// Name is the object name of a variant of the image with hash.
func Name(hash, file string) string { return hash + "/" + file }

// URL is the gateway path a variant is served at.
func URL(hash, file string) string { return "/v1/images/" + hash + "/" + file }

var (
	hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	fileRE = regexp.MustCompile(`^(original\.(jpg|png|webp)|[0-9]{1,5}\.(jpg|png))$`)
)

// ValidName reports whether hash and file can name a stored variant
// (so that a request for anything else is refused before the store is
// asked).
func ValidName(hash, file string) bool { return hashRE.MatchString(hash) && fileRE.MatchString(file) }

// Process checks b (type by sniffing, canvas size, that it decodes) and
// makes its thumbnails: JPEG, or PNG when the original has transparency.
func Process(b []byte) (*Image, error) {
	ct, ok := Sniff(b)
	if !ok {
		return nil, fmt.Errorf("%w: the content is %s", ErrUnsupported, ct)
	}
	decode, decodeConfig := jpeg.Decode, jpeg.DecodeConfig
	switch ct {
	case "image/png":
		decode, decodeConfig = png.Decode, png.DecodeConfig
	case "image/webp":
		decode, decodeConfig = webp.Decode, webp.DecodeConfig
	}
	cfg, err := decodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s header: %v", ErrInvalid, ct, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width*cfg.Height > MaxPixels {
		return nil, fmt.Errorf("%w: %d×%d pixels (at most %d in all)", ErrInvalid, cfg.Width, cfg.Height, MaxPixels)
	}
	src, err := decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, ct, err)
	}
	sum := sha256.Sum256(b)
	img := &Image{
		Hash:     hex.EncodeToString(sum[:]),
		Original: Variant{File: "original." + accepted[ct], ContentType: ct, Width: cfg.Width, Height: cfg.Height, Data: b},
	}
	alpha := !opaque(src)
	// Widest first, each from the previous (cheaper than every size from
	// the original, and CatmullRom keeps each step sharp).
	from := src
	var thumbs []Variant
	for i := len(Widths) - 1; i >= 0; i-- {
		w := Widths[i]
		if w >= cfg.Width {
			continue
		}
		h := max(1, (cfg.Height*w+cfg.Width/2)/cfg.Width)
		dst := image.NewNRGBA(image.Rect(0, 0, w, h))
		draw.CatmullRom.Scale(dst, dst.Bounds(), from, from.Bounds(), draw.Src, nil)
		v, err := encode(dst, w, alpha)
		if err != nil {
			return nil, err
		}
		thumbs = append([]Variant{v}, thumbs...)
		from = dst
	}
	img.Thumbnails = thumbs
	return img, nil
}

func encode(m image.Image, w int, alpha bool) (Variant, error) {
	var buf bytes.Buffer
	v := Variant{Width: m.Bounds().Dx(), Height: m.Bounds().Dy()}
	if alpha {
		if err := png.Encode(&buf, m); err != nil {
			return v, fmt.Errorf("encode %dpx thumbnail: %w", w, err)
		}
		v.File, v.ContentType = strconv.Itoa(w)+".png", "image/png"
	} else {
		if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 82}); err != nil {
			return v, fmt.Errorf("encode %dpx thumbnail: %w", w, err)
		}
		v.File, v.ContentType = strconv.Itoa(w)+".jpg", "image/jpeg"
	}
	v.Data = buf.Bytes()
	return v, nil
}

// opaque reports whether m has no transparent pixel (images without an
// Opaque method are taken as having some).
func opaque(m image.Image) bool {
	o, ok := m.(interface{ Opaque() bool })
	return ok && o.Opaque()
}
