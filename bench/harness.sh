#!/usr/bin/env bash
# bench/harness.sh full|smoke|profile [harness flags]
#
# Builds what the benchmark harness needs (the daemon, the lab programs, the
# raw AF_XDP forwarder, the harness and the Go benchmark binaries) and runs
# it from the repository root:
#   full     BENCHMARKS.md and configs/tuning.md (under 10 minutes on 2 cores)
#   smoke    every step, tiny: bench/out/smoke.md; fails if any step breaks
#   profile  ipfront under pktgen load: bench/out/cpu.pprof, perf.txt, flame.svg
# Needs root. See bench/harness/main.go.
set -euo pipefail
mode=${1:-}
case "$mode" in
full | smoke | profile) shift ;;
*)
	echo "usage: $0 full|smoke|profile [harness flags]" >&2
	exit 2
	;;
esac
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p bin/bench bench/out
$GO build -o bin/ipfront ./cmd/ipfront
$GO build -o bin/iplab ./cmd/iplab
$GO build -o bin/xskfwd ./bench/xskfwd
$GO build -o bin/harness ./bench/harness
if [ "$mode" != profile ]; then
	for pkg in fastpath fastpath/packet fastpath/maglev fastpath/xsk; do
		$GO test -c -o "bin/bench/${pkg//\//_}.test" "./$pkg"
	done
fi
exec bin/harness -mode "$mode" "$@"
