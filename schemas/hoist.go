package schemas

import "strings"

// HoistDefs moves the local definitions of schema sch (its "$defs", which
// sch refers to as "#/$defs/<name>") into defs under "<prefix>_<name>",
// and points every such "$ref" at refBase+"<prefix>_<name>". Documents
// that embed the schemas (OpenAPI: refBase "#/components/schemas/";
// AsyncAPI likewise) need this: inside them "#/$defs/..." resolves
// against the document's root, where there are no $defs. sch is changed
// in place; a schema without $defs is left as it is.
func HoistDefs(sch map[string]any, prefix, refBase string, defs map[string]any) {
	local, _ := sch["$defs"].(map[string]any)
	if len(local) == 0 {
		return
	}
	delete(sch, "$defs")
	rewrite := func(v any) {}
	rewrite = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if name, ok := strings.CutPrefix(ref, "#/$defs/"); ok {
					v["$ref"] = refBase + prefix + "_" + name
				}
			}
			for _, c := range v {
				rewrite(c)
			}
		case []any:
			for _, c := range v {
				rewrite(c)
			}
		}
	}
	rewrite(sch)
	for name, d := range local {
		rewrite(d)
		defs[prefix+"_"+name] = d
	}
}
