package config

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
)

// The per-instance hash seed ([dataplane] hash_seed). Maglev selection and
// the association shards hash the client's address and port; with a seed
// known to everyone (the build's), an attacker who can choose source
// addresses can aim a flood at one server or one shard line. A seed only
// this instance (and its mate) knows takes that away.

// Seeds shorter than these are easy to guess and draw a warning.
const (
	minSeedString = 16      // bytes
	minSeedInt    = 1 << 32 // an integer below this has at most 32 bits of secret
)

// decodeHashSeed reads hash_seed: a string, hashed with SHA-256 to 64 bits,
// or a non-negative integer, used as it is. Absent: HashSeedSet stays false
// and the data plane draws a seed at each start.
func decodeHashSeed(t table, d *Dataplane) {
	v, path, ok := t.get("hash_seed")
	if !ok {
		return
	}
	const weak = "a seed that can be guessed lets an attacker who knows it steer flows; use 16 or more random characters (openssl rand -hex 16)"
	switch v := v.(type) {
	case string:
		if v == "" {
			t.r.errorf(path, `leave hash_seed out for a random seed at each start, or write a secret such as "3f9c0e7a51d24b8e96a0c4d1f27b5e83"`,
				"hash_seed is empty")
			return
		}
		d.HashSeed, d.HashSeedSet = SeedOf(v), true
		if len(v) < minSeedString {
			t.r.warnf(path, weak, "hash_seed has %d characters", len(v))
		}
	case int64:
		if v < 0 {
			t.r.errorf(path, "write a string, or an integer 0..9223372036854775807", "hash_seed %d is negative", v)
			return
		}
		d.HashSeed, d.HashSeedSet = uint64(v), true
		if v < minSeedInt {
			t.r.warnf(path, weak, "hash_seed %d has at most 32 bits", v)
		}
	default:
		t.r.wrongType(path, "a string or an integer", v, "")
	}
}

// SeedOf is the hash seed a hash_seed string stands for: the first 8 bytes
// of its SHA-256, little endian. Two instances given the same string get the
// same seed, whatever machine they run on.
func SeedOf(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.LittleEndian.Uint64(sum[:8])
}

// machineIDPath holds the machine's identity (systemd's machine-id).
var machineIDPath = "/etc/machine-id"

// ResolveHashSeed returns the seed the data plane uses: HashSeed when the
// file sets hash_seed, else one derived from the machine's identity
// (machineIDPath), else a fresh random one. Call it once per start and keep
// the result: a reload must not change where existing flows hash to (and
// cannot: [dataplane] changes need a restart). The machine's identity keeps
// the seed across restarts, so connections that predate a restart and have
// no association yet still hash to their server; it is not known off the
// machine, though local users can read it (set hash_seed where that
// matters).
func (d *Dataplane) ResolveHashSeed() (uint64, error) {
	if d.HashSeedSet {
		return d.HashSeed, nil
	}
	if id, err := os.ReadFile(machineIDPath); err == nil {
		if id = bytes.TrimSpace(id); len(id) > 0 {
			return SeedOf("ipfront hash seed of machine " + string(id)), nil
		}
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("random hash seed: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}
