package config

import (
	"reflect"
	"strings"
	"unicode"
)

// RestartKeys returns the keys of the tables a running daemon cannot change
// ([dataplane], [api], [bgp] and [log]) whose values differ between old and next,
// as key paths in file order of the Spec's fields: "dataplane.queues",
// "log.level". A reload uses it to refuse, or to report as not applied,
// exactly the keys that need a restart instead of ignoring them.
func RestartKeys(old, next *Spec) []string {
	var out []string
	out = appendChanged(out, "dataplane", reflect.ValueOf(old.Dataplane), reflect.ValueOf(next.Dataplane))
	out = appendChanged(out, "api", reflect.ValueOf(old.API), reflect.ValueOf(next.API))
	if old.BGP.Enabled != next.BGP.Enabled {
		out = append(out, "bgp") // the table came or went: not each of its keys
	} else {
		out = appendChanged(out, "bgp", reflect.ValueOf(old.BGP), reflect.ValueOf(next.BGP))
	}
	if old.HA.Enabled != next.HA.Enabled {
		out = append(out, "ha") // [ha] came or went (ha.go)
	} else {
		out = appendChanged(out, "ha", reflect.ValueOf(old.HA), reflect.ValueOf(next.HA))
	}
	return appendChanged(out, "log", reflect.ValueOf(old.Log), reflect.ValueOf(next.Log))
}

// appendChanged appends table.key for every field of two structs of one
// type that differs; fields that stand for one key (HashSeed and
// HashSeedSet) give it once.
func appendChanged(out []string, table string, a, b reflect.Value) []string {
	t := a.Type()
	for i := range t.NumField() {
		if reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			continue
		}
		key := table + "." + fieldKey(t.Field(i).Name)
		if len(out) == 0 || out[len(out)-1] != key {
			out = append(out, key)
		}
	}
	return out
}

// irregularKeys are the fields whose key is not their name in snake case.
var irregularKeys = map[string]string{
	"CPUs": "cpus", "XDPMode": "xdp_mode", "VLANs": "vlans", "PProf": "pprof",
	"TLSCert": "tls_cert", "TLSKey": "tls_key", "HashSeedSet": "hash_seed",
	"ASN": "asn", "RouterID": "router_id", "MED": "med", "MEDSet": "med", "Neighbors": "neighbor",
}

// fieldKey is the configuration key of a Spec field: MaxAssociations ->
// max_associations.
func fieldKey(name string) string {
	if k, ok := irregularKeys[name]; ok {
		return k
	}
	var b strings.Builder
	for i, c := range name {
		if unicode.IsUpper(c) {
			if i > 0 {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
