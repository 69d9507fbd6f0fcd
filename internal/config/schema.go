package config

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Schema returns the JSON Schema (draft 2020-12) of the config file for
// editors, generated from the Go types: the `doc` tags become descriptions,
// the defaults are the loader's, every object refuses unknown keys, and
// every scalar with a format (durations, sizes, enums, integers, booleans)
// also accepts a string holding "${", so that env expansion stays valid.
// docs/bulwark.schema.json is its output; a golden test keeps them equal.
func Schema() ([]byte, error) {
	cfg := &Config{}
	cfg.setDefaults()
	root := schemaFor(reflect.TypeFor[Config](), reflect.ValueOf(cfg).Elem(), reflect.StructField{})
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["title"] = "Bulwark configuration"
	root["description"] = "The config file of the Bulwark API security gateway; see docs/configuration.md."
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Patterns of the scalar formats; an alternative matches a value that
// ${VAR} expansion fills in at load time.
const (
	envPattern      = `\$\{`
	durationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`
	sizePattern     = `^[0-9]+(KiB|MiB|GiB|KB|MB|GB)?$`
	timePattern     = `^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$`
)

type schema = map[string]any

func envString() schema { return schema{"type": "string", "pattern": envPattern} }

// orEnv allows s or a string to be expanded.
func orEnv(s schema) schema { return schema{"anyOf": []any{s, envString()}} }

// schemaFor returns the schema of type t; def holds its default value (the
// zero Value when there is none) and sf the struct field it is the type of,
// for the tags.
func schemaFor(t reflect.Type, def reflect.Value, sf reflect.StructField) schema {
	s := typeSchema(t, def, sf)
	if d := sf.Tag.Get("doc"); d != "" {
		s["description"] = d
	}
	if v, ok := defaultOf(def); ok {
		s["default"] = v
	}
	return s
}

func typeSchema(t reflect.Type, def reflect.Value, sf reflect.StructField) schema {
	switch t {
	case reflect.TypeFor[Duration]():
		return schema{"type": "string", "pattern": durationPattern + "|" + envPattern}
	case reflect.TypeFor[Size]():
		return schema{"anyOf": []any{
			schema{"type": "integer", "minimum": 0},
			schema{"type": "string", "pattern": sizePattern + "|" + envPattern},
		}}
	case reflect.TypeFor[Mode]():
		return orEnv(schema{"enum": []any{string(ModeEnforce), string(ModeReport)}})
	case reflect.TypeFor[netip.Prefix]():
		return schema{"type": "string", "description": "A CIDR such as 10.0.0.0/8, or one IP address."}
	case reflect.TypeFor[AuthList]():
		return schema{"anyOf": []any{
			schema{"const": "none"},
			schema{"type": "array", "minItems": 1, "items": schema{"type": "string", "minLength": 1, "not": schema{"const": "none"}}},
			envString(),
		}}
	case reflect.TypeFor[RouteLimits]():
		one := typeSchema(reflect.TypeFor[RouteLimit](), reflect.ValueOf(RouteLimit{}), reflect.StructField{})
		return schema{"anyOf": []any{one, schema{"type": "array", "minItems": 1, "items": one}}}
	case reflect.TypeFor[AuditAllowed]():
		return schema{"anyOf": []any{
			schema{"enum": []any{"all", "none"}},
			schema{"type": "number", "minimum": 0, "maximum": 1},
			schema{"type": "string", "pattern": `^(0(\.[0-9]+)?|1(\.0+)?)$`},
			envString(),
		}}
	case reflect.TypeFor[Time]():
		return schema{"type": "string", "pattern": timePattern + "|" + envPattern}
	case reflect.TypeFor[Unbuilt]():
		return schema{
			"description": "Not supported yet: this build of Bulwark has no " + sf.Tag.Get("unbuilt") + " stage, so the key is refused (ignoring it would fail open).",
			"not":         schema{},
		}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeSchema(t.Elem(), newElem(t.Elem()).Elem(), sf)
	case reflect.Struct:
		props := schema{}
		var required []string
		for _, f := range fieldsOf(t) {
			fsf := t.Field(f.index)
			var fdef reflect.Value
			if def.IsValid() {
				fdef = def.Field(f.index)
			}
			props[f.name] = schemaFor(fsf.Type, fdef, fsf)
			if fsf.Tag.Get("required") == "true" {
				required = append(required, f.name)
			}
		}
		s := schema{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	case reflect.Map:
		s := schema{"type": "object", "additionalProperties": schemaFor(t.Elem(), newElem(t.Elem()).Elem(), reflect.StructField{})}
		if k := sf.Tag.Get("keys"); k != "" {
			s["propertyNames"] = schema{"pattern": k}
		}
		return s
	case reflect.Slice:
		return schema{"type": "array", "items": schemaFor(t.Elem(), newElem(t.Elem()).Elem(), reflect.StructField{})}
	case reflect.String:
		if e := sf.Tag.Get("enum"); e != "" {
			var values []any
			for v := range strings.SplitSeq(e, ",") {
				values = append(values, v)
				// min_version: 1.2 without quotes is a YAML number, and the
				// loader takes it as written.
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					values = append(values, f)
				}
			}
			return orEnv(schema{"enum": values})
		}
		if p := sf.Tag.Get("pattern"); p != "" {
			return orEnv(schema{"type": "string", "pattern": p})
		}
		return schema{"type": "string"}
	case reflect.Int:
		min := 1
		if m := sf.Tag.Get("min"); m != "" {
			min, _ = strconv.Atoi(m)
		}
		return orEnv(schema{"type": "integer", "minimum": min})
	case reflect.Bool:
		return orEnv(schema{"type": "boolean"})
	}
	// The decoder refuses such a field too; the schema must not pretend.
	return schema{"not": schema{}}
}

// defaultOf returns the JSON form of a scalar default, if there is one.
func defaultOf(v reflect.Value) (any, bool) {
	if !v.IsValid() || v.IsZero() {
		return nil, false
	}
	switch x := v.Interface().(type) {
	case Duration:
		return formatDuration(x), true
	case Size:
		return formatSize(x), true
	case Mode:
		return string(x), true
	case string:
		return x, true
	case int:
		return x, true
	case bool:
		return x, true
	}
	return nil, false
}

// formatDuration writes d as a config value: "8760h", not "8760h0m0s".
func formatDuration(d Duration) string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n Size) string {
	for _, u := range []struct {
		suffix string
		factor Size
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.factor == 0 {
			return strconv.FormatInt(int64(n/u.factor), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(n), 10)
}
