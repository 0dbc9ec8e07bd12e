#!/usr/bin/env bash
# bench/harness.sh full|smoke|profile|overhead [harness flags]
#
# Builds what the benchmark harness needs (the daemon, the lab programs, the
# raw AF_XDP forwarder, the harness and the Go benchmark binaries) and runs
# it from the repository root:
#   full     BENCHMARKS.md and configs/tuning.md (under 10 minutes on 2 cores)
#   smoke    every step, tiny: bench/out/smoke.md; fails if any step breaks
#   profile  ipfront under pktgen load: bench/out/cpu.pprof, perf.txt, flame.svg
#   overhead ipfront against xskfwd only: interleaved rounds and the profiled
#            accounting of where each spends its time (bench/out/overhead.txt)
# AB_BASE (default 80b3afd) is the revision whose BenchmarkProcess the full and
# smoke runs compare with the work tree's, interleaved (see ab_base below).
# OVERHEAD_BASE (default 846b773, the code before issue 14's changes) is the
# revision whose daemon the full run profiles next to today's and xskfwd's
# (see daemon_base below).
# Needs root. See bench/harness/main.go.
set -euo pipefail
mode=${1:-}
case "$mode" in
full | smoke | profile | overhead) shift ;;
*)
	echo "usage: $0 full|smoke|profile|overhead [harness flags]" >&2
	exit 2
	;;
esac
cd "$(dirname "$0")/.."
GO=${GO:-go}
AB_BASE=${AB_BASE:-80b3afd}
OVERHEAD_BASE=${OVERHEAD_BASE:-846b773}
mkdir -p bin/bench bench/out
$GO build -o bin/ipfront ./cmd/ipfront
$GO build -o bin/iplab ./cmd/iplab
$GO build -o bin/xskfwd ./bench/xskfwd
$GO build -o bin/harness ./bench/harness

# ab_base builds the base side of the harness's interleaved A/B of
# BenchmarkProcess (bench/harness/abprocess.go): the test binary of ./fastpath
# at revision AB_BASE (default 80b3afd, the code before the association record
# v2), from a temporary git worktree that is removed whatever happens. The
# harness learns from bin/bench/fastpath_base.txt which revisions it compares,
# or why the step is skipped (no git, no such revision: a source tarball, a
# shallow clone) or failed (the base did not build). -trimpath keeps the build
# cache valid across temporary directories, so only the first build compiles.
ab_base() (
	info=bin/bench/fastpath_base.txt
	log=bench/out/logs/ab-base-build.log
	rm -f bin/bench/fastpath_base.test "$info"
	mkdir -p bench/out/logs
	skip() {
		printf 'skip=%s\n' "$1" >"$info"
		echo "harness.sh: A/B against the base skipped: $1" >&2
		exit 0
	}
	command -v git >/dev/null || skip "git is not installed"
	git rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout (a source tarball?): no base revision to build"
	rev=$(git rev-parse --verify --quiet "${AB_BASE}^{commit}") ||
		skip "revision $AB_BASE is not in this repository (a shallow clone?)"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipfront-ab.XXXXXX") || skip "mktemp failed"
	trap 'git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"; git worktree prune >/dev/null 2>&1 || true' EXIT
	trap 'exit 130' INT TERM
	git worktree add --detach "$tmp/base" "$rev" >"$log" 2>&1 ||
		skip "git worktree add $AB_BASE failed: $(tail -n 1 "$log")"
	modified=no
	if [ -n "$(GIT_OPTIONAL_LOCKS=0 git status --porcelain -- fastpath go.mod go.sum 2>/dev/null)" ]; then
		modified=yes
	fi
	{
		printf 'base=%s\n' "$rev"
		printf 'base_subject=%s\n' "$(git log -1 --format=%s "$rev")"
		printf 'current=%s\n' "$(git rev-parse --short HEAD)"
		printf 'current_modified=%s\n' "$modified"
	} >"$info"
	root=$PWD
	if ! (cd "$tmp/base" && $GO test -trimpath -c -o "$root/bin/bench/fastpath_base.test" ./fastpath) >>"$log" 2>&1; then
		printf 'error=go test -c ./fastpath at %s failed (%s): %s\n' "$AB_BASE" "$log" "$(tail -n 1 "$log")" >>"$info"
	fi
)

# daemon_base builds bin/bench/ipfront_base, the daemon at OVERHEAD_BASE, from
# a temporary git worktree removed whatever happens, for the overhead
# accounting's before/after columns (bench/harness/overhead.go). Why it could
# not is in bin/bench/ipfront_base.txt; the harness then profiles without it.
daemon_base() (
	info=bin/bench/ipfront_base.txt
	log=bench/out/logs/daemon-base-build.log
	rm -f bin/bench/ipfront_base "$info"
	mkdir -p bench/out/logs
	skip() {
		printf 'skip=%s\n' "$1" >"$info"
		echo "harness.sh: base daemon skipped: $1" >&2
		exit 0
	}
	command -v git >/dev/null || skip "git is not installed"
	git rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout: no base revision to build"
	rev=$(git rev-parse --verify --quiet "${OVERHEAD_BASE}^{commit}") ||
		skip "revision $OVERHEAD_BASE is not in this repository (a shallow clone?)"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipfront-base.XXXXXX") || skip "mktemp failed"
	trap 'git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"; git worktree prune >/dev/null 2>&1 || true' EXIT
	trap 'exit 130' INT TERM
	git worktree add --detach "$tmp/base" "$rev" >"$log" 2>&1 ||
		skip "git worktree add $OVERHEAD_BASE failed: $(tail -n 1 "$log")"
	root=$PWD
	if (cd "$tmp/base" && $GO build -trimpath -o "$root/bin/bench/ipfront_base" ./cmd/ipfront) >>"$log" 2>&1; then
		printf 'base=%s\nbase_subject=%s\n' "$rev" "$(git log -1 --format=%s "$rev" | cut -c1-120)" >"$info"
	else
		skip "go build ./cmd/ipfront at $OVERHEAD_BASE failed ($log)"
	fi
)

if [ "$mode" = full ]; then
	daemon_base
fi
if [ "$mode" = full ] || [ "$mode" = smoke ]; then
	for pkg in fastpath fastpath/packet fastpath/maglev fastpath/xsk; do
		$GO test -c -o "bin/bench/${pkg//\//_}.test" "./$pkg"
	done
	ab_base
fi
exec bin/harness -mode "$mode" "$@"
