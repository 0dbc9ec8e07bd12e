#!/usr/bin/env bash
# Interleaved A/B run of the engine's per-packet benchmark (BenchmarkProcess)
# between a base revision and the work tree: both test binaries are built
# first, then run alternately, round after round, so that whatever else the
# machine does falls on both alike. Prints every round and, per case, the
# median and the minimum ns/pkt of each side and the change of the medians.
#
#   bench/ab-process.sh [BASE_REV] [ROUNDS] [BENCHTIME]
#
# A quick tool for developers (no root, not pinned). `make bench` runs the
# same comparison as a harness step (bench/harness/abprocess.go) against
# AB_BASE (default 80b3afd), pinned to the DUT's core, into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-HEAD}
rounds=${2:-7}
benchtime=${3:-1s}
cases='Process/(Established1M|Established64K|NewFlows|OneFlow)$'
tmp=$(mktemp -d)
cleanup() {
	git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
git worktree add --detach "$tmp/base" "$base" >/dev/null 2>&1
(cd "$tmp/base" && go test -c -o "$tmp/base.test" ./fastpath/)
go test -c -o "$tmp/new.test" ./fastpath/
echo "base: $(git rev-parse --short "$base") $(git log -1 --format=%s "$base" | cut -c1-60)"
echo "new:  work tree at $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (modified)')"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), $(go version | cut -d' ' -f3)"
for ((r = 1; r <= rounds; r++)); do
	for side in base new; do
		"$tmp/$side.test" -test.run '^$' -test.bench "$cases" -test.benchtime "$benchtime" -test.benchmem |
			awk -v side="$side" -v round="$r" '/^BenchmarkProcess/ {
				name = $1; sub(/-[0-9]+$/, "", name); sub(/^BenchmarkProcess\//, "", name)
				for (i = 1; i <= NF; i++) { if ($i == "ns/pkt") ns = $(i-1); if ($i == "allocs/op") al = $(i-1) }
				printf "round %d %-4s %-15s %8.1f ns/pkt %s allocs/op\n", round, side, name, ns, al }'
	done
done | tee "$tmp/rounds.txt"
echo
awk '{ v[$3" "$4] = v[$3" "$4] " " $5 }
END {
	for (k in v) {
		n = split(substr(v[k], 2), a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		med[k] = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		mn[k] = a[1]
		split(k, p, " "); cases[p[2]] = 1
	}
	printf "%-15s %12s %12s %12s %12s %8s\n", "case", "base median", "new median", "base min", "new min", "change"
	for (c in cases)
		printf "%-15s %12.1f %12.1f %12.1f %12.1f %+7.1f%%\n", c, med["base "c], med["new "c], mn["base "c], mn["new "c], 100 * (med["new "c] - med["base "c]) / med["base "c]
}' "$tmp/rounds.txt" | sort
