package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Defaults for keys left out of the file.
const (
	defaultBatchSize       = 64
	defaultMaxAssociations = 1 << 20
	defaultRingSize        = 2048
	defaultFrameSize       = 4096
	defaultIdleSpin        = 50 * time.Microsecond
	maxIdleSpin            = time.Second
	defaultListen          = "127.0.0.1:9180"
	defaultDeleteAge       = 10 * time.Minute
	defaultTableSize       = 65537
	defaultWeight          = 1
	defaultHealthInterval  = time.Second
	defaultHealthTimeout   = 500 * time.Millisecond
	defaultHealthPath      = "/"
	defaultExpectStatus    = 200
	defaultRise            = 2
	defaultFall            = 2
	defaultThreshold       = 0.2 // Clear defaults to half the threshold
	defaultWindow          = 10 * time.Second
	defaultSustain         = 5 * time.Second
)

// schema lists the keys one kind of table accepts.
type schema struct {
	name string // how messages name the table
	keys []string
}

var (
	rootSchema      = &schema{"the top level", []string{"dataplane", "log", "api", "target_set", "persistence_group", "bgp", "ha"}}
	dataplaneSchema = &schema{"[dataplane]", []string{
		"interfaces", "queues", "cpus", "xdp_mode", "busy_poll", "batch_size",
		"max_associations", "max_persistence_records", "ring_size", "frame_size", "frames", "need_wakeup", "zero_copy",
		"idle_spin", "prefer_busy_poll", "huge_pages", "partial_queues", "hash_seed", "vlans", "shed_openings",
	}}
	logSchema       = &schema{"[log]", []string{"level", "format"}}
	apiSchema       = &schema{"[api]", []string{"listen", "token", "pprof", "tls_cert", "tls_key"}}
	targetSetSchema = &schema{"[[target_set]]", []string{
		"name", "address", "protocols", "ports", "method", "forwarding", "helper", "expect_timeout", "passive_ports",
		"delete_age", "syn_age", "table_size", "server", "on_server_failure", "health", "peer_group", "balance",
		"persistence", "persistence_timeout", "persistence_ipv4_prefix", "persistence_ipv6_prefix",
		"encap_source", "gue_port", "encap_mtu", "secondary_address", "diameter", "mode",
	}}
	serverSchema = &schema{"[[target_set.server]]", []string{"address", "weight", "name", "owned_ports"}}
	healthSchema = &schema{"[target_set.health]", []string{
		"type", "port", "path", "expect_status", "interval", "timeout", "rise", "fall",
	}}
	peerGroupSchema = &schema{"[[target_set.peer_group]]", []string{"name", "prefixes"}}
	balanceSchema   = &schema{"[target_set.balance]", []string{"threshold", "window", "sustain", "clear", "enabled"}}

	schemas = []*schema{
		rootSchema, dataplaneSchema, logSchema, apiSchema, targetSetSchema, serverSchema,
		healthSchema, peerGroupSchema, balanceSchema, persistenceGroupSchema, bgpSchema, neighborSchema, haSchema,
	}
)

// unknownHint suggests a fix for a key s does not know: a close spelling,
// the one other table the key belongs in, or the list of valid keys.
func (s *schema) unknownHint(key string) string {
	if k := suggest(key, s.keys); k != "" {
		return fmt.Sprintf("did you mean %q?", k)
	}
	var home *schema
	for _, o := range schemas {
		if o != s && slices.Contains(o.keys, key) {
			if home != nil {
				home = nil
				break
			}
			home = o
		}
	}
	if home != nil {
		return fmt.Sprintf("%q belongs in %s", key, home.name)
	}
	return fmt.Sprintf("valid keys in %s: %s", s.name, strings.Join(s.keys, ", "))
}

// suggest returns the candidate closest to word if it is a likely typo:
// equal but for case, or within edit distance 2 (1 for words of up to 3
// bytes). It returns "" otherwise.
func suggest(word string, candidates []string) string {
	limit := 2
	if len(word) <= 3 {
		limit = 1
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if strings.EqualFold(word, c) {
			return c
		}
		if d := distance(word, c, limit); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance returns the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and swaps of adjacent bytes), or
// limit+1 when it is certainly larger than limit.
func distance(a, b string, limit int) int {
	if len(a)-len(b) > limit || len(b)-len(a) > limit {
		return limit + 1
	}
	// Three rows of the dynamic programming table: i-2, i-1 and i.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
