package maglev

import (
	"encoding/binary"
	"math/bits"
)

// Fixed secrets, keyed per deployment by a Seed: the hashes must agree
// across processes and restarts of instances sharing a seed (every load
// balancer in an ECMP group must pick the same backend), which rules out
// hash/maphash's per-process seeds. Values are the first words of xxh3's
// kSecret; any well-mixed constants would do.
const (
	secret0 = 0xbe4ba423396cfeb8
	secret1 = 0x1cad21f72c81017c

	// seedOffset and seedSkip make keyHash two independent functions, as
	// Maglev needs for offset and skip.
	seedOffset = 0xdb979083e96dd4de
	seedSkip   = 0x1f67b3b7a4a44072
)

// Seed keys the flow hash per deployment (`[dataplane] hash_seed`), so that
// an attacker who knows the fixed secrets cannot pick client addresses and
// ports that all land on one server: without the seed the choice is public.
// Instances that must choose alike (mated pairs, an ECMP group) share the
// seed by configuration. Use Unkeyed or NewSeed; the zero Seed is not a
// useful key.
type Seed struct{ k0, k1 uint64 } // the secrets, already keyed

// Unkeyed is the hash of the fixed secrets alone (Hash).
var Unkeyed = Seed{secret0, secret1}

// NewSeed derives a seed from a 64-bit value; equal values give equal seeds
// on every machine.
func NewSeed(v uint64) Seed {
	return Seed{k0: secret0 ^ fmix64(v^seedOffset), k1: secret1 ^ fmix64(v^seedSkip)}
}

// IsZero reports whether s is the zero Seed (not set).
func (s Seed) IsZero() bool { return s == Seed{} }

// Hash returns the flow hash to feed Table.Lookup, typically of the client's
// address and port and the IP protocol; IPv4 addresses go in IPv4-mapped
// form (::ffff:a.b.c.d) so both families share one table. Like xxh3 for
// 9–16 bytes, it folds two 64-bit loads through one 64x64->128 multiply,
// then folds in port and protocol and finishes with murmur3's fmix64, so
// every input bit affects every output bit. A few nanoseconds, no
// allocation. Hash is unkeyed: the fast path hashes with its target set's
// Seed.
func Hash(addr [16]byte, port uint16, proto uint8) uint64 {
	return Unkeyed.Hash(addr, port, proto)
}

// Hash is the package's Hash keyed by s.
func (s Seed) Hash(addr [16]byte, port uint16, proto uint8) uint64 {
	lo := binary.LittleEndian.Uint64(addr[:8]) ^ s.k0
	hi := binary.LittleEndian.Uint64(addr[8:]) ^ s.k1
	// Adding hi breaks the product's lo<->hi symmetry: swapping the halves
	// changes the sum unless they are equal. Port and protocol go in after
	// the multiply, not into lo or hi, where they would cancel against
	// address bits; fmix64 is a bijection, so flows that differ only in
	// them collide no more than chance.
	//
	// The two key loads put it one node over the inliner's budget (cost
	// 81 of 80): a call per new flow, which only new flows pay (an
	// established flow is found by its association, not hashed here).
	return fmix64((hi + mulFold(lo, hi)) ^ uint64(uint32(port)<<8|uint32(proto)))
}

// mulFold multiplies to 128 bits and folds the halves together, mixing all
// bits of both operands in one multiply.
func mulFold(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// fmix64 is murmur3's 64-bit finalizer: full avalanche, two multiplies.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// keyHash is a seeded FNV-1a over a backend key, finalized with fmix64
// because FNV's multiply only carries upward: its low bits, which "% size"
// leans on, barely depend on the high bits. Control plane only.
func keyHash(key string, seed uint64) uint64 {
	h := uint64(0xcbf29ce484222325) ^ seed
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 0x100000001b3
	}
	return fmix64(h ^ uint64(len(key)))
}
