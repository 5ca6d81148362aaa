// Package openapi embeds the command gateway's OpenAPI 3.1 document
// (openapi.json, generated from the gateway's routes and the JSON Schemas
// by `go test ./internal/api -run TestOpenAPIDocumentIsCurrent -update`)
// and the /docs page that renders it.
package openapi

import _ "embed"

// Document is openapi.json, served at GET /openapi.json.
//
//go:embed openapi.json
var Document []byte

// Page is docs.html, served at GET /docs.
//
//go:embed docs.html
var Page []byte
