#!/usr/bin/env bash
# bench/target.sh — throughput and CPU cost of odoh-target against its
# floor, in the same run, rounds alternating:
#
#   ODoH, local zone     odoh-target answering from -local-zone
#   ODoH, Unbound (UDP)  the same binary, no zone, cache off, asking a real
#                        Unbound on loopback (local data) over UDP
#   floor                bench/floor target: net/http TLS + HTTP/2 doing only
#                        the target's HPKE work, answers pre-packed
#   DoH, local zone      plain DoH on the first binary
#
#   bash bench/target.sh            (from the repository root; make bench runs it)
#
# Knobs (environment): PROCS (h2load processes = connections, default 8),
# STREAMS (concurrent streams per connection, 16), REQS (requests per process
# per round, 1250), ROUNDS (6), LOAD_TIMEOUT (seconds per h2load, 60), BASE
# (a git revision: its odoh-target is built too and measured from the local
# zone beside ours), PROFILE (a directory: the daemons write their CPU
# profiles there, see bench/lib.sh).
#
# Why several h2load processes: h2load POSTs the one body given with -d for
# every request of a process. To send many distinct pre-encrypted queries
# (each with its own HPKE encapsulation, as real clients do) we run PROCS
# processes in parallel, each with one connection (-c 1 -m STREAMS) and its
# own body, and ROUNDS rounds with fresh bodies: PROCS×ROUNDS distinct queries
# per path, 8 connections × 16 streams. Every load run is bounded by a request
# count and a timeout. Everything (h2load, servers, Unbound) shares this
# machine's cores: the Unbound row pays for Unbound's CPU too, as a real
# deployment on one machine would.
set -euo pipefail

PROCS=${PROCS:-8}
STREAMS=${STREAMS:-16}
REQS=${REQS:-1250}
ROUNDS=${ROUNDS:-6}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-60}

cd "$(dirname "$0")/.."
for tool in h2load unbound dig; do
	command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install nghttp2-client unbound bind9-dnsutils" >&2; exit 1; }
done

. bench/lib.sh
bench_setup odoh-target floor
bench_zone 64 # 64 names, so the queries are distinct
bench_unbound 64

common=(-listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" -log-format json)
# shellcheck disable=SC2046 # prof prints nothing or two words
"$work/odoh-target" "${common[@]}" $(prof target-zone) -doh -local-zone "$work/bench.zone" -upstream udp://127.0.0.1:9 2>"$work/zone.log" &
zpid=$!
pids+=("$zpid")
# shellcheck disable=SC2046
"$work/odoh-target" "${common[@]}" $(prof target-unbound) -cache-size 0 -upstream "udp://$uaddr" 2>"$work/ub.log" &
bpid=$!
pids+=("$bpid")
"$work/floor" target -listen 127.0.0.1:0 -cert "$work/cert.pem" -key "$work/key.pem" -names "$work/names" 2>"$work/floor.log" &
fpid=$!
pids+=("$fpid")
if baserev=$(bench_base odoh-target); then
	"$work/base/odoh-target" "${common[@]}" -local-zone "$work/bench.zone" -upstream udp://127.0.0.1:9 2>"$work/base-zone.log" &
	xpid=$!
	pids+=("$xpid")
	xaddr=$(wait_log "$work/base-zone.log" listen)
fi
zaddr=$(wait_log "$work/zone.log" listen)
baddr=$(wait_log "$work/ub.log" listen)
faddr=$(wait_log "$work/floor.log" listen)

n=$((PROCS * ROUNDS))
for s in zone:$zaddr ub:$baddr floor:$faddr ${xaddr:+base:$xaddr}; do
	mkdir -p "$work/q-${s%%:*}"
	go run ./bench/gen queries -configs "https://${s#*:}/.well-known/odohconfigs" -ca "$work/cert.pem" \
		-names "$work/names" -n "$n" -out "$work/q-${s%%:*}"
done

ticks=$(getconf CLK_TCK)

# The paths: KEY URL BODY-PREFIX CONTENT-TYPE PIDS (comma-separated).
odoh=application/oblivious-dns-message
paths=(
	"zone https://$zaddr/dns-query q-zone/odoh $odoh $zpid"
	"ub https://$baddr/dns-query q-ub/odoh $odoh $bpid,$upid"
	"floor https://$faddr/dns-query q-floor/odoh $odoh $fpid"
	"doh https://$zaddr/dns-query q-zone/doh application/dns-message $zpid"
)
[[ -n "${xaddr:-}" ]] && paths+=("base https://$xaddr/dns-query q-base/odoh $odoh $xpid")


# Warm up every path (connections, pools, goroutine stacks).
REQS_SAVE=$REQS PROCS_SAVE=$PROCS
REQS=500 PROCS=2
for path in "${paths[@]}"; do h2load_round "$path" 0 >/dev/null; done
REQS=$REQS_SAVE PROCS=$PROCS_SAVE

# The rounds alternate the paths, so that all see the same machine state
# (the machine is shared and its speed drifts); totals are summed per path.
declare -A ok failed secs cpu cpu1
for path in "${paths[@]}"; do
	k=${path%% *}
	# shellcheck disable=SC2034 # read by row and qps
	ok[$k]=0 failed[$k]=0 secs[$k]=0 cpu[$k]=0 cpu1[$k]=0
done
for r in $(seq 0 $((ROUNDS - 1))); do
	for path in "${paths[@]}"; do
		k=${path%% *}
		read -r o f s c c1 < <(h2load_round "$path" "$r")
		ok[$k]=$((ok[$k] + o)) failed[$k]=$((failed[$k] + f)) cpu[$k]=$((cpu[$k] + c)) cpu1[$k]=$((cpu1[$k] + c1))
		secs[$k]=$(awk -v a="${secs[$k]}" -v b="$s" 'BEGIN {print a + b}')
	done
done

allocs=$(go test -run '^$' -bench 'Handler/ODoH' -benchmem -benchtime 2000x ./target 2>/dev/null |
	awk '/allocs\/op/ {for (i = 1; i < NF; i++) if ($(i+1) == "allocs/op") print $i}')

qps() { awk -v ok="${ok[$1]}" -v s="${secs[$1]}" 'BEGIN { printf "%.1f", (s > 0 ? ok / s : 0) }'; }
row() { # LABEL KEY [SECOND-PROCESS]: CPU split between the two processes if named
	awk -v p="$1" -v ok="${ok[$2]}" -v f="${failed[$2]}" -v s="${secs[$2]}" -v c="${cpu[$2]}" -v c1="${cpu1[$2]}" \
		-v hz="$ticks" -v other="${3:-}" 'BEGIN {
		qps = s > 0 ? ok / s : 0; us = ok > 0 ? c / hz * 1e6 / ok : 0; us1 = ok > 0 ? c1 / hz * 1e6 / ok : 0
		note = other != "" ? sprintf(" (target %.1f + %s %.1f)", us1, other, us - us1) : ""
		printf "| %-21s | %10.0f | %8d | %6d | %8.1f%s |\n", p, qps, ok, f, us, note }'
}
cpuratio() { # A B: CPU per query of B over A's (the throughput A would have over B, CPU-bound)
	awk -v ca="${cpu[$1]}" -v oa="${ok[$1]}" -v cb="${cpu[$2]}" -v ob="${ok[$2]}" 'BEGIN {
		printf "%.2f", (ca > 0 && oa > 0 && ob > 0 ? (cb / ob) / (ca / oa) : 0) }'
}
ratio() { # A B: queries/s of A over B
	awk -v a="$(qps "$1")" -v b="$(qps "$2")" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'
}
echo
echo "odoh-target against its floor: $PROCS connections x $STREAMS streams, $n distinct queries per path," \
	"$ROUNDS rounds alternating, $(nproc) cores shared by all processes"
echo
echo "| path                  | queries/s  |       ok | failed | CPU µs/query |"
echo "|-----------------------|-----------:|---------:|-------:|-------------:|"
row "ODoH, local zone" zone
row "ODoH, Unbound (UDP)" ub Unbound
row "floor (HPKE only)" floor
row "DoH, local zone" doh
[[ -n "${xaddr:-}" ]] && row "ODoH, zone, $baserev" base
echo
echo "Unbound upstream / local zone: $(ratio ub zone) (target >= 0.85)"
echo "Unbound upstream / floor:      $(ratio ub floor) (target >= 0.85)"
echo "local zone / floor:            $(ratio zone floor)"
echo "the same by CPU per query (steadier on a shared machine; Unbound's CPU counted):"
echo "  Unbound upstream / local zone: $(cpuratio ub zone); / floor: $(cpuratio ub floor)"
echo "ODoH / DoH (local zone):       $(ratio zone doh) (target >= 0.50)"
[[ -n "${xaddr:-}" ]] && echo "local zone / the same built from $baserev: $(ratio zone base)"
nfailed=0
for k in "${!failed[@]}"; do nfailed=$((nfailed + failed[$k])); done
echo "failed: $nfailed (target 0)"
echo "Handler allocations per ODoH query (go test -bench Handler/ODoH): ${allocs:-?}"
