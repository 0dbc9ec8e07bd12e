#!/usr/bin/env bash
# kernel-pktgen.sh: drive the Linux kernel's packet generator (pktgen,
# /proc/net/pktgen) for bare-metal benchmark runs of ipfront, where a NIC and
# a kernel with CONFIG_NET_PKTGEN are at hand. It sends UDP only; for TCP SYN
# or ACK and SCTP, and on kernels without pktgen (such as the lab VMs), use
# bin/pktgen, ipfront's AF_XDP generator, whose flag names this script shares.
#
# usage: bench/kernel-pktgen.sh --dev IF --dst-mac MAC [options]
#
#   --dev IF            interface to send on (required)
#   --dst-mac MAC       destination MAC: the next hop towards the VIP, i.e.
#                       ipfront's interface (required)
#   --dst IP            destination address, the VIP (default 192.0.2.10,
#                       or 2001:db8::10 with --ipv6)
#   --dport N           destination port (default 7000)
#   --src IP            first client address (default 198.51.100.2, or
#                       2001:db8:100::2 with --ipv6)
#   --src-count K       client addresses src .. src+K-1 (default 1; IPv4
#                       only: pktgen has no IPv6 source range)
#   --sport-first P     first client port (default 1024)
#   --sport-count N     client ports P .. P+N-1 (default 1)
#   --size BYTES        frame size without FCS, as bin/pktgen's --size and
#                       pktgen's pkt_size (default 64)
#   --count N           frames per thread, 0 for no limit (default 10000000)
#   --threads T         kernel threads, one per CPU 0..T-1, each on its own
#                       TX queue T (default 1)
#   --rate PPS          packets per second per thread, 0 for max (default 0)
#   --burst N           frames per doorbell (xmit_more) (default 1)
#   --clone N           send each skb N+1 times (default 0). Faster, but a
#                       clone repeats its flow: keep 0 to rotate flows per frame.
#   --ipv6              IPv6 (implied by an IPv6 --dst)
#   -o text|json        output; json prints one object (default text)
#   --check             only check that kernel pktgen is available (exit 0 or 2)
#   -h, --help          this text
#
# Mapping to ipfront's benchmark: the flags mean what bin/pktgen's do (one
# pktgen thread is one bin/pktgen on one queue; --rate is per thread), with
# two differences. pktgen advances the client address and the client port
# together, one step each per frame, so it visits all K*N flows only when K
# and N are coprime (otherwise lcm(K, N) flows; the script warns), where
# bin/pktgen walks flow i = (src + i/N, sport-first + i%N). And pktgen sends
# only UDP with a fixed payload; TCP and SCTP need bin/pktgen.
#
# Exit status: 0 done; 1 failure; 2 kernel pktgen not available (no
# /proc/net/pktgen and no module to load); 64 usage error.
#
# Needs root. Ctrl-C stops the run and prints what was sent.
set -euo pipefail

PGDIR=/proc/net/pktgen

usage() {
	sed -n '/^# usage:/,/^# Needs root/s/^# \{0,1\}//p' "$0"
}

die() {
	echo "kernel-pktgen: $*" >&2
	exit 1
}

usage_error() {
	echo "kernel-pktgen: $*" >&2
	echo "run with --help for usage" >&2
	exit 64
}

DEV="" DST="" DST_MAC="" DPORT=7000 SRC="" SRC_COUNT=1 SPORT_FIRST=1024 SPORT_COUNT=1
SIZE=64 COUNT=10000000 THREADS=1 RATE=0 BURST=1 CLONE=0 IPV6=0 OUTPUT=text CHECK=0

need_arg() {
	[ "$2" -ge 2 ] || usage_error "$1 needs a value"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--dev) need_arg "$1" $#; DEV=$2; shift 2 ;;
	--dst) need_arg "$1" $#; DST=$2; shift 2 ;;
	--dst-mac) need_arg "$1" $#; DST_MAC=$2; shift 2 ;;
	--dport) need_arg "$1" $#; DPORT=$2; shift 2 ;;
	--src) need_arg "$1" $#; SRC=$2; shift 2 ;;
	--src-count) need_arg "$1" $#; SRC_COUNT=$2; shift 2 ;;
	--sport-first) need_arg "$1" $#; SPORT_FIRST=$2; shift 2 ;;
	--sport-count) need_arg "$1" $#; SPORT_COUNT=$2; shift 2 ;;
	--size) need_arg "$1" $#; SIZE=$2; shift 2 ;;
	--count) need_arg "$1" $#; COUNT=$2; shift 2 ;;
	--threads) need_arg "$1" $#; THREADS=$2; shift 2 ;;
	--rate) need_arg "$1" $#; RATE=$2; shift 2 ;;
	--burst) need_arg "$1" $#; BURST=$2; shift 2 ;;
	--clone) need_arg "$1" $#; CLONE=$2; shift 2 ;;
	--ipv6) IPV6=1; shift ;;
	--check) CHECK=1; shift ;;
	-o) need_arg "$1" $#; OUTPUT=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done

# Is kernel pktgen there? Load the module if it is not built in. Checked
# before the arguments, so that a bare --check (or any call) says it first.
if [ ! -d "$PGDIR" ]; then
	detail=""
	if [ "$(id -u)" = 0 ] && command -v modprobe >/dev/null 2>&1; then
		detail=$(modprobe pktgen 2>&1) || true
	elif [ "$(id -u)" != 0 ]; then
		detail="(not root: could not try to load the module)"
	fi
	if [ ! -d "$PGDIR" ]; then
		echo "kernel pktgen not available: this kernel has no pktgen module (CONFIG_NET_PKTGEN); use bin/pktgen (AF_XDP) instead" >&2
		[ -z "$detail" ] || echo "kernel-pktgen: $detail" >&2
		exit 2
	fi
fi
[ "$CHECK" = 0 ] || exit 0

is_uint() {
	case "$1" in
	'' | *[!0-9]*) return 1 ;;
	esac
}

for v in DPORT SRC_COUNT SPORT_FIRST SPORT_COUNT SIZE COUNT THREADS RATE BURST CLONE; do
	is_uint "${!v}" || usage_error "--$(echo "$v" | tr '[:upper:]_' '[:lower:]-') must be a non-negative integer, not '${!v}'"
	printf -v "$v" '%d' "$((10#${!v}))" # no octal surprises from leading zeros
done
[ -n "$DEV" ] || usage_error "--dev is required"
[ -n "$DST_MAC" ] || usage_error "--dst-mac is required (the MAC of ipfront's interface, or the next hop's)"
[[ "$DST_MAC" =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || usage_error "--dst-mac '$DST_MAC' is not a MAC address"
[ "$OUTPUT" = text ] || [ "$OUTPUT" = json ] || usage_error "-o must be text or json"
[ "$SIZE" -ge 60 ] || usage_error "--size must be at least 60 (64 with the FCS)"
[ "$THREADS" -ge 1 ] || usage_error "--threads must be at least 1"
if [ "$SRC_COUNT" -lt 1 ] || [ "$SPORT_COUNT" -lt 1 ]; then
	usage_error "--src-count and --sport-count must be at least 1"
fi
if [ "$DPORT" -gt 65535 ] || [ "$SPORT_FIRST" -lt 1 ] || [ $((SPORT_FIRST + SPORT_COUNT - 1)) -gt 65535 ]; then
	usage_error "ports must lie in 1..65535"
fi
case "$DST$SRC" in *:*) IPV6=1 ;; esac
if [ "$IPV6" = 1 ]; then
	: "${DST:=2001:db8::10}" "${SRC:=2001:db8:100::2}"
	case "$DST" in *:*) ;; *) usage_error "--dst $DST is not IPv6" ;; esac
	case "$SRC" in *:*) ;; *) usage_error "--src $SRC is not IPv6" ;; esac
	[ "$SRC_COUNT" = 1 ] || usage_error "kernel pktgen has no IPv6 source range (--src-count 1 only); use bin/pktgen"
	# pktgen puts its own 16-byte header after UDP and grows shorter frames.
	[ "$SIZE" -ge 78 ] || usage_error "--size must be at least 78 for IPv6 (headers and pktgen's 16-byte header)"
else
	: "${DST:=192.0.2.10}" "${SRC:=198.51.100.2}"
fi

ip4_to_int() {
	local IFS=. a b c d o v=0
	read -r a b c d <<<"$1"
	for o in "$a" "$b" "$c" "$d"; do
		if ! is_uint "$o" || [ "${#o}" -gt 3 ] || [ $((10#$o)) -gt 255 ]; then
			usage_error "'$1' is not an IPv4 address"
		fi
		v=$(((v << 8) | 10#$o))
	done
	echo "$v"
}

int_to_ip4() {
	echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"
}

SRC_MAX=$SRC
if [ "$IPV6" = 0 ]; then
	ip4_to_int "$DST" >/dev/null
	first=$(ip4_to_int "$SRC")
	last=$((first + SRC_COUNT - 1))
	[ "$last" -le 4294967295 ] || usage_error "$SRC_COUNT addresses from $SRC overflow the address space"
	SRC_MAX=$(int_to_ip4 "$last")
fi

gcd() {
	local a=$1 b=$2 t
	while [ "$b" -ne 0 ]; do t=$((a % b)); a=$b; b=$t; done
	echo "$a"
}
if [ "$SRC_COUNT" -gt 1 ] && [ "$SPORT_COUNT" -gt 1 ] && [ "$(gcd "$SRC_COUNT" "$SPORT_COUNT")" -ne 1 ]; then
	echo "kernel-pktgen: warning: pktgen steps address and port together: $SRC_COUNT addresses and $SPORT_COUNT ports" \
		"give $((SRC_COUNT * SPORT_COUNT / $(gcd "$SRC_COUNT" "$SPORT_COUNT"))) flows, not $((SRC_COUNT * SPORT_COUNT));" \
		"make the counts coprime" >&2
fi

[ "$(id -u)" = 0 ] || die "needs root (writes $PGDIR)"
[ -e "/sys/class/net/$DEV" ] || die "no interface $DEV in this network namespace"
ncpu=$(getconf _NPROCESSORS_ONLN)
[ "$THREADS" -le "$ncpu" ] || die "--threads $THREADS exceeds the $ncpu online CPUs"
for ((t = 0; t < THREADS; t++)); do
	[ -e "$PGDIR/kpktgend_$t" ] || die "no pktgen thread kpktgend_$t"
done

# pgset FILE CMD writes one pktgen command and checks pktgen's verdict.
pgset() {
	local file=$1 cmd=$2
	echo "$cmd" >"$file" || die "write '$cmd' to $file failed"
	if ! grep -q "^Result: OK" "$file" 2>/dev/null && [ "$(basename "$file")" != pgctrl ]; then
		die "pktgen refused '$cmd' in $file: $(grep "^Result:" "$file" || true)"
	fi
}

# cleanup stops the threads and detaches the device (also on failure).
cleanup() {
	echo reset >"$PGDIR/pgctrl" 2>/dev/null || true
}

pgset "$PGDIR/pgctrl" reset
trap cleanup EXIT
for ((t = 0; t < THREADS; t++)); do
	thr="$PGDIR/kpktgend_$t"
	dev="$DEV@$t"
	pgset "$thr" rem_device_all
	pgset "$thr" "add_device $dev"
	f="$PGDIR/$dev"
	pgset "$f" "flag QUEUE_MAP_CPU"
	pgset "$f" "count $COUNT"
	pgset "$f" "clone_skb $CLONE"
	pgset "$f" "pkt_size $SIZE"
	pgset "$f" "burst $BURST"
	pgset "$f" "delay 0"
	[ "$RATE" = 0 ] || pgset "$f" "ratep $RATE"
	pgset "$f" "dst_mac $DST_MAC"
	if [ "$IPV6" = 1 ]; then
		pgset "$f" "dst6 $DST"
		pgset "$f" "src6 $SRC"
	else
		pgset "$f" "dst_min $DST"
		pgset "$f" "dst_max $DST"
		pgset "$f" "src_min $SRC"
		pgset "$f" "src_max $SRC_MAX"
	fi
	pgset "$f" "udp_dst_min $DPORT"
	pgset "$f" "udp_dst_max $DPORT"
	pgset "$f" "udp_src_min $SPORT_FIRST"
	pgset "$f" "udp_src_max $((SPORT_FIRST + SPORT_COUNT - 1))"
done

[ "$OUTPUT" = json ] || echo "kernel-pktgen: $THREADS thread(s) on $DEV, $SIZE-byte UDP $SRC..$SRC_MAX:$SPORT_FIRST+$SPORT_COUNT -> $DST:$DPORT ($DST_MAC), count $COUNT per thread"
# "start" returns when every thread has sent its count, or on Ctrl-C.
trap 'echo stop >"$PGDIR/pgctrl" 2>/dev/null || true' INT TERM
echo start >"$PGDIR/pgctrl" || true
trap - INT TERM

# Each device file ends with e.g.
#   Result: OK: 4532(c4532+d0) usec, 1000000 (60byte,0frags)
#     220655pps 105Mb/sec (105914400bps) errors: 0
total_pkts=0 total_pps=0 total_err=0
for ((t = 0; t < THREADS; t++)); do
	f="$PGDIR/$DEV@$t"
	pkts=$(awk '/pkts-sofar:/ { print $2; exit }' "$f")
	pps=$(awk '/^Result: OK:/ { getline; if (match($0, /[0-9]+pps/)) print substr($0, RSTART, RLENGTH - 3); exit }' "$f")
	errs=$(awk '/errors:/ { print $NF; exit }' "$f")
	: "${pkts:=0}" "${pps:=0}" "${errs:=0}"
	total_pkts=$((total_pkts + pkts))
	total_pps=$((total_pps + pps))
	total_err=$((total_err + errs))
	[ "$OUTPUT" = json ] || echo "thread $t: $pkts frames, $pps pps, $errs errors"
done
mbps=$((total_pps * SIZE * 8 / 1000000))
if [ "$OUTPUT" = json ]; then
	printf '{"dev":"%s","threads":%d,"proto":"udp","family":%d,"size":%d,"sent":%d,"pps":%d,"mbps":%d,"errors":%d}\n' \
		"$DEV" "$THREADS" "$((IPV6 ? 6 : 4))" "$SIZE" "$total_pkts" "$total_pps" "$mbps" "$total_err"
else
	echo "total: $total_pkts frames, $total_pps pps, $mbps Mbit/s, $total_err errors"
fi
