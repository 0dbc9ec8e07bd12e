package config

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// table is one TOML table being decoded: its key path and its values as
// go-toml decoded them. m is nil when the table is absent from the file.
// Getters return the default for absent keys and report values of the wrong
// type.
type table struct {
	r    *reporter
	path string
	m    map[string]any
}

// get returns the value of key and its path.
func (t table) get(key string) (any, string, bool) {
	v, ok := t.m[key]
	return v, join(t.path, key), ok
}

// checkKeys reports every key that s does not know.
func (t table) checkKeys(s *schema) {
	for _, k := range slices.Sorted(maps.Keys(t.m)) {
		if !slices.Contains(s.keys, k) {
			what := "unknown key"
			if isTable(t.m[k]) {
				what = "unknown table"
			}
			t.r.keyErrorf(join(t.path, k), s.unknownHint(k), "%s", what)
			// A misspelt key is not also a missing one.
			if fix := suggest(k, s.keys); fix != "" {
				if _, present := t.m[fix]; !present {
					t.r.mute(join(t.path, fix))
				}
			}
		}
	}
}

// require reports key as missing if it is absent.
func (t table) require(key, hint string) {
	if _, ok := t.m[key]; !ok {
		t.r.errorf(join(t.path, key), hint, "required key is missing")
	}
}

// sub returns the table at key, empty if it is absent.
func (t table) sub(key string) table {
	v, path, ok := t.get(key)
	sub := table{r: t.r, path: path}
	if !ok {
		return sub
	}
	if m, isMap := v.(map[string]any); isMap {
		sub.m = m
	} else {
		t.r.wrongType(path, "a table", v, fmt.Sprintf("write the keys under a [%s] header", headerName(path)))
	}
	return sub
}

// tables returns the array of tables at key ([[key]] headers or an array of
// inline tables). An element that is not a table is reported and returned as
// an empty table whose checks are silenced, so indices stay aligned with the
// file.
func (t table) tables(key string) []table {
	v, path, ok := t.get(key)
	if !ok {
		return nil
	}
	elems, isArray := v.([]any)
	if !isArray {
		t.r.wrongType(path, "an array of tables", v, fmt.Sprintf("write [[%s]] with double brackets", headerName(path)))
		return nil
	}
	out := make([]table, len(elems))
	for i, e := range elems {
		out[i] = table{r: t.r, path: elem(path, i)}
		if m, isMap := e.(map[string]any); isMap {
			out[i].m = m
		} else {
			t.r.wrongType(out[i].path, "a table", e, "")
		}
	}
	return out
}

// str returns the string at key.
func (t table) str(key, def string) string {
	v, path, ok := t.get(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		t.r.wrongType(path, "a string", v, quoteHint(key, v))
		return def
	}
	return s
}

// integer returns the integer at key.
func (t table) integer(key string, def int) int {
	v, path, ok := t.get(key)
	if !ok {
		return def
	}
	n, ok := t.toInt(path, v)
	if !ok {
		return def
	}
	return n
}

// boolean returns the boolean at key.
func (t table) boolean(key string, def bool) bool {
	v, path, ok := t.get(key)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		hint := ""
		if s, isStr := v.(string); isStr && (s == "true" || s == "false") {
			hint = "write " + s + " without quotes"
		}
		t.r.wrongType(path, "true or false", v, hint)
		return def
	}
	return b
}

// list returns the array at key; present is false if key is absent. A value
// that is not an array is reported and returned as nil.
func (t table) list(key string) (elems []any, path string, present bool) {
	v, path, ok := t.get(key)
	if !ok {
		return nil, path, false
	}
	elems, isArray := v.([]any)
	if !isArray {
		hint := ""
		if _, isMap := v.(map[string]any); !isMap {
			if s, isStr := v.(string); isStr {
				hint = fmt.Sprintf("use a list: %s = [%s]", key, strconv.Quote(s))
			} else {
				hint = fmt.Sprintf("use a list: %s = [...]", key)
			}
		}
		t.r.wrongType(path, "an array", v, hint)
	}
	return elems, path, true
}

// strings returns the array of strings at key. Elements of the wrong type
// are reported and left empty.
func (t table) strings(key string) (list []string, present bool) {
	elems, path, present := t.list(key)
	if elems == nil {
		return nil, present
	}
	list = make([]string, len(elems))
	for i, e := range elems {
		s, isStr := e.(string)
		if !isStr {
			t.r.wrongType(elem(path, i), "a string", e, quoteHint("", e))
			continue
		}
		list[i] = s
	}
	return list, present
}

// ints returns the array of integers at key. Elements of the wrong type are
// reported and left 0.
func (t table) ints(key string) (list []int, present bool) {
	elems, path, present := t.list(key)
	if elems == nil {
		return nil, present
	}
	list = make([]int, len(elems))
	for i, e := range elems {
		list[i], _ = t.toInt(elem(path, i), e)
	}
	return list, present
}

// toInt converts a decoded integer, reporting anything else.
func (t table) toInt(path string, v any) (int, bool) {
	n, isInt := v.(int64)
	if !isInt {
		hint := ""
		if s, isStr := v.(string); isStr {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				hint = "write " + s + " without quotes"
			}
		}
		t.r.wrongType(path, "an integer", v, hint)
		return 0, false
	}
	if n > math.MaxInt || n < math.MinInt {
		t.r.errorf(path, "", "%d is too large", n)
		return 0, false
	}
	return int(n), true
}

// addr returns the IP address at key; present is false if key is absent.
func (t table) addr(key string) (a netip.Addr, present bool) {
	v, path, ok := t.get(key)
	if !ok {
		return netip.Addr{}, false
	}
	s, isStr := v.(string)
	if !isStr {
		t.r.wrongType(path, "an IP address string", v, quoteHint(key, v))
		return netip.Addr{}, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		hint := "write an IPv4 (192.0.2.10) or IPv6 (2001:db8::10) address"
		if p, err := netip.ParsePrefix(s); err == nil {
			hint = fmt.Sprintf("write the address without a prefix length: %q", p.Addr())
		} else if ap, err := netip.ParseAddrPort(s); err == nil {
			hint = fmt.Sprintf("write the address without a port: %q", ap.Addr())
		}
		t.r.errorf(path, hint, "invalid IP address %s", quote(s))
	}
	return a, true
}

// float returns the number at key; an integer is taken as a float.
func (t table) float(key string, def float64) float64 {
	v, path, ok := t.get(key)
	if !ok {
		return def
	}
	switch v := v.(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	hint := ""
	if s, isStr := v.(string); isStr && strings.Trim(s, "0123456789.eE+-") == "" {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			hint = "write " + s + " without quotes"
		}
	}
	t.r.wrongType(path, "a number", v, hint)
	return def
}

// prefixes returns the array of CIDR prefixes at key. Elements that are not
// prefixes are reported and left zero (invalid).
func (t table) prefixes(key string) (list []netip.Prefix, present bool) {
	strs, present := t.strings(key)
	if strs == nil {
		return nil, present
	}
	path := join(t.path, key)
	list = make([]netip.Prefix, len(strs))
	for i, s := range strs {
		ep := elem(path, i)
		if t.r.muted(ep) {
			continue // not a string: already reported
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			hint := `write a prefix such as "198.51.100.0/28" or "2001:db8:1::/48"`
			if a, err := netip.ParseAddr(s); err == nil {
				a = a.WithZone("")
				hint = fmt.Sprintf("write a single address with its length: %q", netip.PrefixFrom(a, a.BitLen()))
			}
			t.r.errorf(ep, hint, "invalid prefix %s", quote(s))
			continue
		}
		list[i] = p
	}
	return list, present
}

// duration returns the Go duration string at key.
func (t table) duration(key string, def time.Duration) time.Duration {
	v, path, ok := t.get(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		hint := ""
		if n, isInt := v.(int64); isInt {
			hint = fmt.Sprintf("add a unit: %s = \"%ds\"", key, n)
		}
		t.r.wrongType(path, "a duration string", v, hint)
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.r.errorf(path, `use a Go duration such as "30s", "10m" or "1h30m"`, "invalid duration %s", quote(s))
		return def
	}
	return d
}

// quoteHint suggests quoting a scalar that was given where a string was
// expected.
func quoteHint(key string, v any) string {
	var lit string
	switch v := v.(type) {
	case int64:
		lit = strconv.FormatInt(v, 10)
	case float64:
		lit = strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		lit = strconv.FormatBool(v)
	default:
		return ""
	}
	if key == "" {
		return "put it in quotes: " + strconv.Quote(lit)
	}
	return fmt.Sprintf("put it in quotes: %s = %q", key, lit)
}

// headerName returns the name of the table at path as a header writes it:
// "target_set.health" for "target_set[0].health".
func headerName(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '[' {
			if j := strings.IndexByte(path[i:], ']'); j > 0 {
				i += j
				continue
			}
		}
		b.WriteByte(path[i])
	}
	return b.String()
}

// isTable reports whether v is a table or an array of tables.
func isTable(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		return true
	case []any:
		for _, e := range v {
			if _, ok := e.(map[string]any); !ok {
				return false
			}
		}
		return len(v) > 0
	}
	return false
}
