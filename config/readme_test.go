package config_test

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/socialbridge/bridge/config"
)

// defaultsDocs are the pages whose key tables document the configuration's defaults.
var defaultsDocs = []string{"../docs/configuration.md", "../docs/analytics.md"}

// TestREADMEDefaults checks every default of the documented configuration tables against
// config.Default(): a documented default is the one a user gets.
func TestREADMEDefaults(t *testing.T) {
	var readme []byte
	for _, f := range defaultsDocs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		readme = append(readme, b...)
	}
	b, err := yaml.Marshal(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	var defaults map[string]any
	if err := yaml.Unmarshal(b, &defaults); err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| (`[a-z_]+\\.[^|]*) \\| ([^|]+) \\|")
	checked := 0
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		doc := strings.TrimSpace(m[2])
		if strings.HasPrefix(doc, "required") || strings.Contains(m[1], "[]") {
			continue
		}
		for _, key := range keys(m[1]) {
			got, ok := lookup(defaults, key)
			if !ok {
				t.Errorf("the docs document %s, which the configuration does not have", key)
				continue
			}
			checked++
			if !sameDefault(doc, got) {
				t.Errorf("%s: the docs say %s, config.Default() has %#v", key, doc, got)
			}
		}
	}
	if checked < 25 {
		t.Fatalf("checked %d defaults; the docs' tables were not found", checked)
	}
}

// keys expands a table cell such as "`a.b.c`, `.d`" into a.b.c and a.b.d.
func keys(cell string) []string {
	var out []string
	var parent string
	for _, k := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cell, -1) {
		key := k[1]
		if strings.HasPrefix(key, ".") {
			key = parent + key
		}
		parent = key[:strings.LastIndex(key, ".")]
		out = append(out, key)
	}
	return out
}

func lookup(m map[string]any, key string) (any, bool) {
	var v any = m
	for _, part := range strings.Split(key, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = mm[part]; !ok {
			return nil, false
		}
	}
	return v, true
}

// sameDefault compares a README cell (`value`, empty or none) with a YAML default.
func sameDefault(doc string, got any) bool {
	if doc == "empty" || doc == "none" {
		return isEmpty(got)
	}
	var want any
	if err := yaml.Unmarshal([]byte(strings.Trim(doc, "`")), &want); err != nil {
		return false
	}
	return reflect.DeepEqual(normal(want), normal(got))
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case bool:
		return !v
	case int:
		return v == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// normal turns durations written any way ("120s", "2m0s") into one form, in lists too.
func normal(v any) any {
	switch v := v.(type) {
	case string:
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normal(e)
		}
		return out
	}
	return v
}
