package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/tradewind/tradewind/schemas"
)

// readBody checks the content type (415 unless application/json, UTF-8)
// and reads at most limit bytes (413 beyond). An empty body is allowed
// only when emptyOK, and reads as "{}".
func readBody(w http.ResponseWriter, r *http.Request, limit int64, emptyOK bool) ([]byte, *Problem) {
	if emptyOK && r.ContentLength == 0 {
		return []byte("{}"), nil
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"Content-Type is missing; send application/json").header("Content-Type")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return nil, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("Content-Type %q is not supported; send application/json", ct)).header("Content-Type")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("charset %q is not supported; JSON is UTF-8", cs)).header("Content-Type")
	}
	tooLarge := func() *Problem {
		return problem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
			fmt.Sprintf("the body must be at most %d bytes", limit))
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge()
	case err != nil:
		return nil, problem(http.StatusBadRequest, "malformed-body", "Malformed request body", "the body could not be read: "+err.Error())
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if emptyOK {
			return []byte("{}"), nil
		}
		return nil, problem(http.StatusBadRequest, "malformed-body", "Malformed request body", "the body is empty; send a JSON object")
	}
	return b, nil
}

// parseObject decodes a body that must be one JSON object, keeping
// numbers exact (json.Number) so that huge values reach schema validation
// as written instead of overflowing here.
func parseObject(b []byte) (map[string]any, *Problem) {
	if !utf8.Valid(b) {
		off := 0
		for off < len(b) {
			r, n := utf8.DecodeRune(b[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return nil, problem(http.StatusBadRequest, "malformed-body", "Malformed request body",
			fmt.Sprintf("the body is not valid UTF-8 (first bad byte at offset %d)", off))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, problem(http.StatusBadRequest, "malformed-body", "Malformed request body", jsonError(b, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, problem(http.StatusBadRequest, "malformed-body", "Malformed request body",
			fmt.Sprintf("unexpected data after the JSON object at byte %d", dec.InputOffset()))
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, problem(http.StatusUnprocessableEntity, "invalid-field", "Invalid request body",
			"the body must be a JSON object").field("", "body")
	}
	return obj, nil
}

// jsonError words a JSON syntax error with its position.
func jsonError(b []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(b, se.Offset)
		return fmt.Sprintf("malformed JSON at line %d, column %d (byte %d): %v", line, col, se.Offset, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "malformed JSON: unexpected end of the body"
	}
	return "malformed JSON: " + err.Error()
}

func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// validate checks the decoded body (parseObject's document) against the
// schema of ceType, naming the field at fault; fromPath maps body fields
// filled from the URL to their parameter.
func validate(ceType string, doc map[string]any, fromPath map[string]string) *Problem {
	err := schemas.ValidateValue(ceType, doc)
	if err == nil {
		return nil
	}
	var ve *schemas.ValidationError
	if !errors.As(err, &ve) {
		return problem(http.StatusUnprocessableEntity, "invalid-field", "Invalid request body", err.Error())
	}
	where := "body"
	detail := ve.Problem
	if param, ok := fromPath[ve.Field]; ok {
		where = "path"
		detail = "path parameter " + param + " " + ve.Problem
	} else if ve.Field != "" {
		detail = ve.Field + " " + ve.Problem
	}
	return problem(http.StatusUnprocessableEntity, "invalid-field", "Invalid request body", detail).field(ve.Field, where)
}
