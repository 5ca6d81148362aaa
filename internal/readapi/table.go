package readapi

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// Answers with a CSV form: a route whose handler returns a table answers
// JSON {key: [rows]} by default, and CSV with ?format=csv (a header row of
// the rows' JSON field names, then one record per row, RFC 4180 with CRLF).
// The query parameter rather than Accept: a download link or a spreadsheet's
// "from web" import can set it. Other routes refuse format=csv with a 400.
//
// The records are built by walking the row struct's fields by reflection,
// so the CSV columns are the JSON fields by construction; encoding/csv does
// the quoting. Hand-written (a few lines) rather than a struct-to-CSV
// library because of the guard below, which such libraries do not apply.
//
// Hazard: spreadsheets run a cell starting with = + - @ (or a tab or CR)
// as a formula, and text cells here (customer names, emails) are typed by
// customers. Such a text cell is written with a leading apostrophe (the
// usual neutralisation); numbers are written as they are.

// table is a handler's answer that also has a CSV form. T is a struct
// whose exported fields have json tags; none is nested.
type table[T any] struct {
	name string // the file name's stem: <name>.csv
	key  string // the JSON member holding the rows
	rows []T
}

func (t table[T]) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string][]T{t.key: t.rows})
}

// csvAnswer is what the read wrapper needs of a table.
type csvAnswer interface {
	filename() string
	writeCSV(w io.Writer) error
}

func (t table[T]) filename() string { return t.name + ".csv" }

func (t table[T]) writeCSV(w io.Writer) error {
	typ := reflect.TypeFor[T]()
	var fields []int
	var header []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fields = append(fields, i)
		header = append(header, name)
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(header); err != nil {
		return err
	}
	rec := make([]string, len(fields))
	for _, row := range t.rows {
		v := reflect.ValueOf(row)
		for j, i := range fields {
			rec[j] = cell(v.Field(i))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cell renders a field: text (guarded), integers, floats in their shortest
// exact form, booleans; a nil pointer is an empty cell.
func cell(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			return "'" + s
		}
		return s
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	}
	return fmt.Sprint(v.Interface())
}

// formatParam reads ?format=: json (the default) or csv.
func formatParam(r *http.Request) (csv bool, err error) {
	switch r.URL.Query().Get("format") {
	case "", "json":
		return false, nil
	case "csv":
		return true, nil
	}
	return false, errBadRequest("format", "must be json or csv")
}
