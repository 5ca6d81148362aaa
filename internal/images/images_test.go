package images_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"testing"

	"github.com/tradewind/tradewind/internal/images"
)

func photo(t *testing.T, w, h int) []byte {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.RGBA{uint8(x), uint8(y), 100, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAJPEGGetsJPEGThumbnailsNoWiderThanItself(t *testing.T) {
	img, err := images.Process(photo(t, 1000, 500))
	if err != nil {
		t.Fatal(err)
	}
	if img.Original.ContentType != "image/jpeg" || img.Original.File != "original.jpg" || len(img.Hash) != 64 {
		t.Fatalf("original %+v, hash %q", img.Original.File, img.Hash)
	}
	want := []struct{ w, h int }{{160, 80}, {320, 160}, {640, 320}}
	if len(img.Thumbnails) != len(want) {
		t.Fatalf("%d thumbnails", len(img.Thumbnails))
	}
	for i, th := range img.Thumbnails {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(th.Data))
		if err != nil || cfg.Width != want[i].w || cfg.Height != want[i].h || th.ContentType != "image/jpeg" || th.Width != want[i].w {
			t.Errorf("thumbnail %d: %+v %v (%s)", i, cfg, err, th.File)
		}
	}
	small, err := images.Process(photo(t, 160, 90))
	if err != nil || len(small.Thumbnails) != 0 {
		t.Fatalf("a 160 px image has %d thumbnails (%v): none is narrower", len(small.Thumbnails), err)
	}
}

func TestWhatIsNotAnAcceptedImageIsRefused(t *testing.T) {
	for name, b := range map[string][]byte{
		"ELF":  append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...),
		"MZ":   append([]byte("MZ\x90\x00"), make([]byte, 100)...),
		"GIF":  []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
		"HTML": []byte("<html><script>alert(1)</script>"),
	} {
		if _, err := images.Process(b); !errors.Is(err, images.ErrUnsupported) {
			t.Errorf("%s: %v", name, err)
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewGray(image.Rect(0, 0, 10, 10)))
	if _, err := images.Process(b.Bytes()[:b.Len()-20]); !errors.Is(err, images.ErrInvalid) {
		t.Errorf("a truncated PNG: %v", err)
	}
	if _, err := images.Process(bomb()); !errors.Is(err, images.ErrInvalid) {
		t.Errorf("a PNG declaring 100000×100000 pixels: %v", err)
	}
}

// bomb is a PNG header declaring a huge canvas (refused before decoding).
func bomb() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 100000)
	binary.BigEndian.PutUint32(ihdr[4:], 100000)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestNamesAreChecked(t *testing.T) {
	h := "ab" + string(bytes.Repeat([]byte("0"), 62))
	for file, ok := range map[string]bool{"original.png": true, "160.jpg": true, "320.png": true, "../x": false, "160.exe": false, "original.gif": false} {
		if images.ValidName(h, file) != ok {
			t.Errorf("%s: want %v", file, ok)
		}
	}
	if images.ValidName("ABC", "160.jpg") {
		t.Error("a hash that is not hex SHA-256")
	}
}

// TestAWebPWithTransparencyGetsPNGThumbnails: WebP is decoded (never
// re-encoded); a transparent original's thumbnails are PNG. The file is a
// 200×100 gradient with a transparent corner, made with cwebp for this
// test.
func TestAWebPWithTransparencyGetsPNGThumbnails(t *testing.T) {
	b, err := os.ReadFile("testdata/gradient-alpha.webp")
	if err != nil {
		t.Fatal(err)
	}
	img, err := images.Process(b)
	if err != nil {
		t.Fatal(err)
	}
	if img.Original.ContentType != "image/webp" || img.Original.File != "original.webp" || img.Original.Width != 200 || img.Original.Height != 100 {
		t.Fatalf("original %s %s %d×%d", img.Original.ContentType, img.Original.File, img.Original.Width, img.Original.Height)
	}
	if len(img.Thumbnails) != 1 || img.Thumbnails[0].File != "160.png" {
		t.Fatalf("thumbnails %+v", img.Thumbnails)
	}
	th, err := png.Decode(bytes.NewReader(img.Thumbnails[0].Data))
	if err != nil || th.Bounds().Dx() != 160 || th.Bounds().Dy() != 80 {
		t.Fatalf("thumbnail %v, %v", th.Bounds(), err)
	}
	if _, _, _, a := th.At(0, 0).RGBA(); a != 0 {
		t.Errorf("the transparent corner has alpha %d", a)
	}
}
