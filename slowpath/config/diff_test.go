package config

import (
	"reflect"
	"slices"
	"testing"
)

// TestFieldKeys keeps RestartKeys' names true: every field of [dataplane],
// [api] and [log] maps to a key of its table's schema. A field added with a
// name whose snake case is not its key fails here until irregularKeys has it.
func TestFieldKeys(t *testing.T) {
	for _, c := range []struct {
		v any
		s *schema
	}{{Dataplane{}, dataplaneSchema}, {API{}, apiSchema}, {Log{}, logSchema}} {
		rt := reflect.TypeOf(c.v)
		for i := range rt.NumField() {
			if k := fieldKey(rt.Field(i).Name); !slices.Contains(c.s.keys, k) {
				t.Errorf("fieldKey(%s.%s) = %q, not a key of %s", rt.Name(), rt.Field(i).Name, k, c.s.name)
			}
		}
	}
}
