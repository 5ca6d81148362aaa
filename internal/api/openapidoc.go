package api

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/images"
	"github.com/tradewind/tradewind/internal/readapi"
	"github.com/tradewind/tradewind/schemas"
)

// OpenAPIDocument builds the gateway's OpenAPI 3.1 document from its
// command routes and the JSON Schemas. docs/openapi/openapi.json is its
// checked-in output (served at /openapi.json); a test keeps them equal,
// and another checks the document against the live router.
func OpenAPIDocument() ([]byte, error) {
	type obj = map[string]any
	ref := func(kind, name string) obj { return obj{"$ref": "#/components/" + kind + "/" + name} }
	problemResp := func(desc string) obj {
		return obj{"description": desc, "content": obj{"application/problem+json": obj{"schema": ref("schemas", "Problem")}}}
	}
	errors := obj{
		"400": problemResp("Malformed body (JSON syntax, UTF-8), missing Idempotency-Key, unsupported Accept-Version."),
		"401": ref("responses", "Unauthorized"),
		"403": problemResp("The caller lacks the scope, or a customer acts for someone else."),
		"406": problemResp("The Accept header excludes JSON."),
		"409": problemResp("A request with this Idempotency-Key is still in progress."),
		"413": problemResp("The body exceeds the configured limit (default 1 MiB)."),
		"415": problemResp("Content-Type is not application/json (UTF-8)."),
		"422": problemResp("The body breaks the command's schema (field names the JSON pointer), or the Idempotency-Key was used for a different request."),
		"429": ref("responses", "TooManyRequests"),
		"503": ref("responses", "Unavailable"),
	}
	rlHeaders := obj{
		"RateLimit-Limit":     obj{"description": "Burst size of the caller's bucket for this route class.", "schema": obj{"type": "integer"}},
		"RateLimit-Remaining": obj{"description": "Requests admissible right now.", "schema": obj{"type": "integer"}},
		"RateLimit-Reset":     obj{"description": "Seconds until the bucket is full again.", "schema": obj{"type": "integer"}},
		"RateLimit-Policy":    obj{"description": "<burst>;w=<seconds to refill>.", "schema": obj{"type": "string"}},
		"X-Request-Id":        obj{"description": "The request id (echoed or assigned).", "schema": obj{"type": "string"}},
	}
	paths := obj{}
	compSchemas := obj{
		"Problem": obj{
			"type": "object", "description": "RFC 9457 problem details.",
			"required": []string{"type", "title", "status"},
			"properties": obj{
				"type": obj{"type": "string", "format": "uri"}, "title": obj{"type": "string"}, "status": obj{"type": "integer"},
				"detail": obj{"type": "string"}, "instance": obj{"type": "string"}, "request_id": obj{"type": "string"},
				"field":    obj{"type": "string", "description": "JSON pointer of the body field at fault"},
				"in":       obj{"type": "string", "enum": []string{"body", "path", "header"}},
				"header":   obj{"type": "string", "description": "The request header at fault"},
				"versions": obj{"type": "array", "items": obj{"type": "integer"}, "description": "Supported schema versions"},
			},
		},
		"Accepted": obj{
			"type": "object", "required": []string{"status", "id", "command_id", "type", "position", "location"},
			"properties": obj{
				"status":     obj{"const": "accepted"},
				"id":         obj{"type": "string", "description": "The aggregate id (order id, SKU, ...)."},
				"command_id": obj{"type": "string", "format": "uuid", "description": "The command's CloudEvent id, derived from (caller, Idempotency-Key, request)."},
				"type":       obj{"type": "string", "description": "The CloudEvent type published."},
				"position":   obj{"type": "string", "pattern": "^COMMANDS:[0-9]+$", "description": "Read-your-writes token: the command's COMMANDS stream sequence (docs/gateway.md)."},
				"location":   obj{"type": "string", "description": "The read model of the aggregate."},
			},
		},
	}
	for _, c := range commands {
		method, path, _ := strings.Cut(c.pattern, " ")
		var oneOf []any
		var vers []string
		for _, v := range c.versions() {
			spec := events.MustLookup(c.types[v])
			name := strings.TrimSuffix(spec.SchemaFile(), ".json")
			raw, err := fs.ReadFile(schemas.FS(), spec.SchemaFile())
			if err != nil {
				return nil, fmt.Errorf("openapi: %w", err)
			}
			var sch obj
			if err := json.Unmarshal(raw, &sch); err != nil {
				return nil, fmt.Errorf("openapi: %s: %w", spec.SchemaFile(), err)
			}
			delete(sch, "$schema") // OpenAPI 3.1's dialect is 2020-12 already
			delete(sch, "$id")     // else its $refs would resolve against the schema's URI
			schemas.HoistDefs(sch, name, "#/components/schemas/", compSchemas)
			compSchemas[name] = sch
			oneOf = append(oneOf, ref("schemas", name))
			d := fmt.Sprintf("%d (%s)", v, spec.Type())
			if dep, ok := c.deprecated[v]; ok {
				d += ", deprecated, sunset " + dep.Sunset
			}
			vers = append(vers, d)
		}
		params := []any{ref("parameters", "IdempotencyKey"), ref("parameters", "AcceptVersion"), ref("parameters", "RequestID"), ref("parameters", "CorrelationID"), ref("parameters", "Traceparent")}
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") {
				n := strings.Trim(seg, "{}")
				params = append(params, obj{"name": n, "in": "path", "required": true, "schema": obj{"type": "string"}})
			}
		}
		// anyOf, not oneOf: a body may be valid under several versions
		// (an order without v2's fields is a valid v1 and v2); the
		// Accept-Version header, not the body, picks the version.
		body := obj{"required": !c.emptyOK, "content": obj{"application/json": obj{"schema": obj{"anyOf": oneOf}}}}
		if len(oneOf) == 1 {
			body["content"] = obj{"application/json": obj{"schema": oneOf[0]}}
		}
		okHeaders := obj{
			"Location":                 obj{"description": "The aggregate's read model.", "schema": obj{"type": "string"}},
			"Tradewind-Position":       obj{"description": "Read-your-writes token, as in the body.", "schema": obj{"type": "string"}},
			"Tradewind-Schema-Version": obj{"description": "The schema version the body was read as.", "schema": obj{"type": "integer"}},
			"Idempotent-Replayed":      obj{"description": "true when this is the stored answer to an earlier identical request.", "schema": obj{"type": "string"}},
			"Deprecation":              obj{"description": "On deprecated schema versions: when the successor shipped (RFC 9745).", "schema": obj{"type": "string"}},
			"Sunset":                   obj{"description": "On deprecated schema versions: when they may stop being accepted (RFC 8594).", "schema": obj{"type": "string"}},
			"Link":                     obj{"description": `On deprecated schema versions: the successor, rel="successor-version".`, "schema": obj{"type": "string"}},
		}
		for k, v := range rlHeaders {
			okHeaders[k] = v
		}
		responses := obj{"202": obj{"description": "Accepted: JetStream durably acknowledged the command.", "headers": okHeaders,
			"content": obj{"application/json": obj{"schema": ref("schemas", "Accepted")}}}}
		for k, v := range errors {
			responses[k] = v
		}
		if c.prepare != nil && strings.Contains(path, "/cancel") {
			responses["404"] = problemResp("A customer's token names an order that is not theirs (or does not exist).")
		}
		op := obj{
			"operationId": operationID(c.types[c.versions()[len(c.versions())-1]]),
			"summary":     c.summary,
			"description": strings.TrimSpace(fmt.Sprintf("Publishes %s. Scope %s. Schema versions (Accept-Version, default the newest): %s. %s",
				strings.Join(typesOf(c), ", "), c.scope, strings.Join(vers, "; "), c.doc)),
			"tags":        []string{"commands"},
			"parameters":  params,
			"requestBody": body,
			"responses":   responses,
		}
		paths[path] = obj{strings.ToLower(method): op}
	}
	// Product images: the upload (multipart, not a command body) and the
	// public, content-addressed files.
	imgSchema := strings.TrimSuffix(events.MustLookup(events.AddProductImageV1).SchemaFile(), ".json")
	if _, ok := compSchemas[imgSchema]; !ok {
		raw, err := fs.ReadFile(schemas.FS(), imgSchema+".json")
		if err != nil {
			return nil, fmt.Errorf("openapi: %w", err)
		}
		var sch obj
		if err := json.Unmarshal(raw, &sch); err != nil {
			return nil, fmt.Errorf("openapi: %s: %w", imgSchema, err)
		}
		delete(sch, "$schema")
		delete(sch, "$id")
		schemas.HoistDefs(sch, imgSchema, "#/components/schemas/", compSchemas)
		compSchemas[imgSchema] = sch
	}
	compSchemas["ImageAccepted"] = obj{"allOf": []any{ref("schemas", "Accepted"), obj{
		"type": "object", "required": []string{"image"},
		"properties": obj{"image": ref("schemas", imgSchema)}}}}
	uploadResponses := obj{
		"202": obj{"description": "Accepted: the image and its thumbnails are stored and JetStream durably acknowledged " + events.AddProductImageV1 + ".",
			"headers": obj{
				"Location":           obj{"description": "The product's read model (it lists the image once the event is projected).", "schema": obj{"type": "string"}},
				"Tradewind-Position": obj{"description": "Read-your-writes token, as in the body.", "schema": obj{"type": "string"}},
			},
			"content": obj{"application/json": obj{"schema": ref("schemas", "ImageAccepted")}}},
		"400": problemResp("Malformed multipart body, or no file in the field image."),
		"401": ref("responses", "Unauthorized"),
		"403": problemResp("The caller lacks the " + auth.ScopeCatalogWrite + " scope."),
		"404": problemResp("The catalog has no product with this SKU (unknown-sku)."),
		"406": problemResp("The Accept header excludes JSON."),
		"413": problemResp(fmt.Sprintf("The image exceeds %d bytes (image-too-large).", images.MaxBytes)),
		"415": problemResp("Not multipart/form-data, or the file is not a JPEG, PNG or WebP image by its content (unsupported-image-type); its name and declared type are ignored, so a renamed file is refused."),
		"422": problemResp("The file starts like an accepted type but does not decode, or its canvas is too large (invalid-image)."),
		"429": ref("responses", "TooManyRequests"),
		"503": ref("responses", "Unavailable"),
	}
	paths["/v1/products/{sku}/images"] = obj{"post": obj{
		"operationId": "uploadProductImage", "summary": "Add an image to a product",
		"description": fmt.Sprintf("Scope %s (API keys, ops tokens). The type is decided by content sniffing: JPEG, PNG or WebP only. "+
			"The image (at most %d bytes) and its thumbnails (widths %v, never wider than the original; JPEG, or PNG when the original has transparency) "+
			"are stored in the image Object Store, content-addressed by the SHA-256 of the bytes; then %s is published and becomes %s. "+
			"Needs no Idempotency-Key: the same bytes for the same SKU are the same command (its id derives from SKU and hash), so uploading them again adds nothing.",
			auth.ScopeCatalogWrite, images.MaxBytes, images.Widths, events.AddProductImageV1, events.ProductImageAddedV1),
		"tags": []string{"commands"},
		"parameters": []any{obj{"name": "sku", "in": "path", "required": true, "schema": obj{"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"}},
			ref("parameters", "RequestID"), ref("parameters", "CorrelationID"), ref("parameters", "Traceparent")},
		"requestBody": obj{"required": true, "content": obj{"multipart/form-data": obj{"schema": obj{
			"type": "object", "required": []string{"image"},
			"properties": obj{"image": obj{"type": "string", "contentMediaType": "application/octet-stream", "description": "The image file."}}},
			"encoding": obj{"image": obj{"contentType": "image/jpeg, image/png, image/webp"}}}}},
		"responses": uploadResponses,
	}}
	paths["/v1/images/{hash}/{file}"] = obj{"get": obj{
		"operationId": "getImage", "summary": "A product image or thumbnail",
		"description": "Public: product images are public catalog data, so no credentials are needed. Content-addressed: the URL names the bytes, " +
			"so the answer never changes (Cache-Control: " + immutable + "; ETag; If-None-Match answers 304). The URLs come from the product's images.",
		"tags": []string{"reads"}, "security": []any{},
		"parameters": []any{
			obj{"name": "hash", "in": "path", "required": true, "description": "Hex SHA-256 of the original.", "schema": obj{"type": "string", "pattern": "^[0-9a-f]{64}$"}},
			obj{"name": "file", "in": "path", "required": true, "description": "original.<ext>, or <width>.<jpg|png> for a thumbnail.",
				"schema": obj{"type": "string", "pattern": `^(original\.(jpg|png|webp)|[0-9]{1,5}\.(jpg|png))$`}},
			obj{"name": "If-None-Match", "in": "header", "schema": obj{"type": "string"}},
		},
		"responses": obj{
			"200": obj{"description": "The image.", "headers": obj{
				"ETag":          obj{"schema": obj{"type": "string"}},
				"Cache-Control": obj{"schema": obj{"type": "string", "const": immutable}},
			}, "content": obj{"image/jpeg": obj{}, "image/png": obj{}, "image/webp": obj{}}},
			"304": obj{"description": "Not modified (If-None-Match)."},
			"404": problemResp("No such image."),
			"503": ref("responses", "Unavailable"),
		},
	}}
	paths["/v1/auth/logout"] = obj{"post": obj{
		"operationId": "logout", "summary": "Revoke the presented access token's session on every instance",
		"description": "Needs no Idempotency-Key: revoking twice is revoking once.", "tags": []string{"sessions"},
		"responses": obj{"204": obj{"description": "Revoked."}, "400": problemResp("An API key, not an access token."),
			"401": ref("responses", "Unauthorized"), "503": ref("responses", "Unavailable")},
	}}
	compSchemas["NotificationPreferences"] = obj{
		"type": "object", "required": []string{"muted_kinds"}, "additionalProperties": false,
		"properties": obj{
			"muted_kinds": obj{"type": "array", "uniqueItems": true, "items": obj{"type": "string", "enum": events.NotificationKinds()},
				"description": "The notification kinds the user muted: the notifier makes none of them (no seq, no inbox entry, no push, not unread)."},
			"kinds": obj{"type": "array", "readOnly": true, "items": obj{"type": "string"}, "description": "Every notification kind (answers only)."},
		},
	}
	prefsErrors := obj{"401": ref("responses", "Unauthorized"), "403": problemResp("An API key: preferences belong to a user's access token."),
		"406": problemResp("The Accept header excludes JSON."), "429": ref("responses", "TooManyRequests"), "503": ref("responses", "Unavailable")}
	prefsOK := obj{"description": "The signed-in user's preferences (muted_kinds sorted, without repeats) and every kind there is.",
		"content": obj{"application/json": obj{"schema": ref("schemas", "NotificationPreferences")}}}
	getPrefs := obj{"200": prefsOK}
	putPrefs := obj{"200": prefsOK,
		"400": problemResp("Malformed body (JSON syntax, UTF-8)."),
		"413": problemResp("The body exceeds the configured limit (default 1 MiB)."),
		"415": problemResp("Content-Type is not application/json (UTF-8)."),
		"422": problemResp("An unknown kind (field names it, e.g. /muted_kinds/1), a missing muted_kinds, or another field."),
	}
	for k, v := range prefsErrors {
		getPrefs[k], putPrefs[k] = v, v
	}
	paths[routePreferences] = obj{
		"get": obj{"operationId": "getNotificationPreferences", "summary": "The signed-in user's notification preferences",
			"description": "User access tokens only: a user reads their own. See docs/websocket.md (Preferences).", "tags": []string{"notifications"},
			"responses": getPrefs},
		"put": obj{"operationId": "putNotificationPreferences", "summary": "Replace the signed-in user's muted notification kinds",
			"description": "User access tokens only: a user sets their own. Needs no Idempotency-Key: the list replaces the stored one. " +
				"From the commit on, the notifier makes no notification of a muted kind for this user: it takes no seq (the inbox stays gap-free), " +
				"is not stored, pushed nor counted unread. Earlier entries stay in the inbox.",
			"tags":        []string{"notifications"},
			"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": ref("schemas", "NotificationPreferences")}}},
			"responses":   putPrefs},
	}
	// The read API, served where the projections role runs (make run: the
	// same address).
	readPaths, readSchemas := readapi.OpenAPI()
	for p, item := range readPaths {
		if ops, ok := paths[p].(obj); ok {
			for m, o := range item.(obj) {
				ops[m] = o
			}
			continue
		}
		paths[p] = item
	}
	for n, sch := range readSchemas {
		compSchemas[n] = sch
	}
	paths["/openapi.json"] = obj{"get": obj{"operationId": "openapi", "summary": "This document", "security": []any{}, "tags": []string{"documents"},
		"responses": obj{"200": obj{"description": "OpenAPI 3.1", "content": obj{"application/json": obj{}}}}}}
	paths["/docs"] = obj{"get": obj{"operationId": "docs", "summary": "This document for humans", "security": []any{}, "tags": []string{"documents"},
		"responses": obj{"200": obj{"description": "HTML", "content": obj{"text/html": obj{}}}}}}

	doc := obj{
		"openapi": "3.1.0",
		"info": obj{"title": "Tradewind HTTP API", "version": "1",
			"description": "Commands for producer services that do not speak NATS (the gateway): 202 only after JetStream's durable ack; " +
				"every POST command needs an Idempotency-Key; limits are shared by all gateway instances. See docs/gateway.md. " +
				"Reads of the read models (GET /v1/...): every answer carries Tradewind-Position; ?after=<token> waits for a position (read-your-writes). See docs/analysts.md."},
		"servers":  []any{obj{"url": "http://localhost:8080"}},
		"security": []any{obj{"bearer": []any{}}},
		"tags":     []any{obj{"name": "commands"}, obj{"name": "reads"}, obj{"name": "sessions"}, obj{"name": "notifications"}, obj{"name": "documents"}},
		"paths":    paths,
		"components": obj{
			"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer",
				"description": "An API key (tw_…, producer services, scoped) or a user access token (JWT HS256: sub = customer id, role, exp, jti)."}},
			"schemas": compSchemas,
			"parameters": obj{
				"IdempotencyKey": obj{"name": "Idempotency-Key", "in": "header", "required": true, "schema": obj{"type": "string", "minLength": 1, "maxLength": 255},
					"description": "Unique per command and caller; a retry with the same key and request gets the original answer (byte for byte), a different request 422, a concurrent one 409. Kept 24 h by default."},
				"AcceptVersion": obj{"name": "Accept-Version", "in": "header", "schema": obj{"type": "string", "pattern": "^[vV]?[0-9]+$"},
					"description": "Schema version of the body; default the newest."},
				"RequestID":     obj{"name": "X-Request-Id", "in": "header", "schema": obj{"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}},
				"CorrelationID": obj{"name": "X-Correlation-Id", "in": "header", "schema": obj{"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}, "description": "Becomes the CloudEvent's correlationid (default: the request id)."},
				"Traceparent":   obj{"name": "traceparent", "in": "header", "schema": obj{"type": "string"}, "description": "W3C trace context, carried into the CloudEvent."},
			},
			"responses": obj{
				"Unauthorized":    problemResp("No, invalid, expired or revoked credentials (WWW-Authenticate: Bearer)."),
				"TooManyRequests": obj{"description": "Over the caller's shared limit; Retry-After and RateLimit-* say when to retry.", "headers": rlHeaders, "content": obj{"application/problem+json": obj{"schema": ref("schemas", "Problem")}}},
				"Unavailable":     problemResp("NATS (or a credential or idempotency store) cannot take the command now; nothing was accepted. Retry-After; retry with the same Idempotency-Key."),
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func typesOf(c *commandRoute) []string {
	var out []string
	for _, v := range c.versions() {
		out = append(out, c.types[v])
	}
	return out
}

// operationID is the newest type's context and name, camel-cased.
func operationID(ceType string) string {
	s := events.MustLookup(ceType)
	parts := strings.FieldsFunc(s.Context+"_"+s.Name, func(r rune) bool { return r == '_' || r == '.' })
	for i := range parts {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.ToLower(parts[0][:1]) + strings.Join(parts, "")[1:]
}
