#!/usr/bin/env bash
# bench/target.sh — throughput and CPU cost of odoh-target: ODoH against
# plain DoH on the same binary, in the same run, answered from a local zone.
#
#   bash bench/target.sh            (from the repository root; make bench runs it)
#
# Knobs (environment): PROCS (h2load processes = connections, default 8),
# STREAMS (concurrent streams per connection, 16), REQS (requests per process
# per round, 1250), ROUNDS (6), LOAD_TIMEOUT (seconds per h2load, 60).
#
# Why several h2load processes: h2load POSTs the one body given with -d for
# every request of a process. To send many distinct pre-encrypted queries
# (each with its own HPKE encapsulation, as real clients do) we run PROCS
# processes in parallel, each with one connection (-c 1 -m STREAMS) and its
# own body, and ROUNDS rounds with fresh bodies: PROCS×ROUNDS distinct queries
# per protocol. That is the required 8 connections × 16 streams. DoH is driven
# the same way (POST application/dns-message), so the two rows differ only in
# the protocol. Every load run is bounded by a request count and a timeout.
set -euo pipefail

PROCS=${PROCS:-8}
STREAMS=${STREAMS:-16}
REQS=${REQS:-1250}
ROUNDS=${ROUNDS:-6}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-60}

cd "$(dirname "$0")/.."
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 1; }

. bench/lib.sh
bench_setup odoh-target
bench_zone 64 # 64 names, so the queries are distinct

"$work/odoh-target" -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-doh -local-zone "$work/bench.zone" -upstream udp://127.0.0.1:9 -log-format json 2>"$work/target.log" &
pid=$!
pids+=("$pid")
addr=$(wait_log "$work/target.log" listen)
url="https://$addr/dns-query"

n=$((PROCS * ROUNDS))
go run ./bench/gen queries -configs "https://$addr/.well-known/odohconfigs" -ca "$work/cert.pem" \
	-names "$work/names" -n "$n" -out "$work"

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# round PROTO CONTENT-TYPE R: one round (PROCS h2load processes in parallel,
# each with its own pre-encrypted body); prints "succeeded failed seconds
# cputicks".
round() {
	local proto=$1 ct=$2 r=$3 ok=0 failed=0 t0 t1 c0 c1 p out hp=()
	c0=$(cpu_ticks)
	t0=$(date +%s.%N)
	for p in $(seq 0 $((PROCS - 1))); do
		timeout "$LOAD_TIMEOUT" h2load -n "$REQS" -c 1 -m "$STREAMS" \
			-d "$work/$proto-$((r * PROCS + p)).bin" -H "content-type: $ct" "$url" \
			>"$work/h2load-$proto-$p.out" 2>&1 &
		hp+=($!)
	done
	wait "${hp[@]}" 2>/dev/null || true
	t1=$(date +%s.%N)
	c1=$(cpu_ticks)
	for p in $(seq 0 $((PROCS - 1))); do
		out="$work/h2load-$proto-$p.out"
		# "status codes: 2500 2xx, 0 3xx, 0 4xx, 0 5xx": only 2xx count.
		ok=$((ok + $(awk '/^status codes:/ {print $3; exit}' "$out" || echo 0)))
		failed=$((failed + $(awk '/^requests:/ {for (i = 1; i < NF; i++) if ($(i+1) ~ /^failed/) print $i; exit}' "$out" || echo 0)))
	done
	echo "$ok $failed $(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') $((c1 - c0))"
}

# Warm up both paths (connections, pools, caches).
PROCS_SAVE=$PROCS; REQS_SAVE=$REQS
PROCS=2 REQS=500 round odoh application/oblivious-dns-message 0 >/dev/null
PROCS=2 REQS=500 round doh application/dns-message 0 >/dev/null
PROCS=$PROCS_SAVE; REQS=$REQS_SAVE

# The rounds alternate ODoH and DoH, so that both see the same machine state
# (the machine is shared and its speed drifts); totals are summed per path.
declare -A tot
for k in odoh_ok odoh_failed odoh_secs odoh_cpu doh_ok doh_failed doh_secs doh_cpu; do tot[$k]=0; done
for r in $(seq 0 $((ROUNDS - 1))); do
	for proto in odoh doh; do
		ct=application/oblivious-dns-message
		[[ $proto == doh ]] && ct=application/dns-message
		read -r ok failed secs cpu < <(round "$proto" "$ct" "$r")
		tot[${proto}_ok]=$((tot[${proto}_ok] + ok))
		tot[${proto}_failed]=$((tot[${proto}_failed] + failed))
		tot[${proto}_cpu]=$((tot[${proto}_cpu] + cpu))
		tot[${proto}_secs]=$(awk -v a="${tot[${proto}_secs]}" -v b="$secs" 'BEGIN {print a + b}')
	done
done
odoh_ok=${tot[odoh_ok]} odoh_failed=${tot[odoh_failed]} odoh_secs=${tot[odoh_secs]} odoh_cpu=${tot[odoh_cpu]}
doh_ok=${tot[doh_ok]} doh_failed=${tot[doh_failed]} doh_secs=${tot[doh_secs]} doh_cpu=${tot[doh_cpu]}

allocs=$(go test -run '^$' -bench 'Handler/ODoH' -benchmem -benchtime 2000x ./target 2>/dev/null |
	awk '/allocs\/op/ {for (i = 1; i < NF; i++) if ($(i+1) == "allocs/op") print $i}')

row() { # proto ok failed secs cputicks
	awk -v p="$1" -v ok="$2" -v f="$3" -v s="$4" -v c="$5" -v hz="$ticks" 'BEGIN {
		qps = s > 0 ? ok / s : 0; us = ok > 0 ? c / hz * 1e6 / ok : 0
		printf "| %-5s | %10.0f | %8d | %6d | %12.1f |\n", p, qps, ok, f, us }'
}
echo
echo "odoh-target, local zone, $PROCS connections x $STREAMS streams, $((PROCS * ROUNDS)) distinct queries per protocol, $(nproc) cores"
echo
echo "| proto | queries/s  |       ok | failed | CPU µs/query |"
echo "|-------|-----------:|---------:|-------:|-------------:|"
row ODoH "$odoh_ok" "$odoh_failed" "$odoh_secs" "$odoh_cpu"
row DoH "$doh_ok" "$doh_failed" "$doh_secs" "$doh_cpu"
awk -v a="$odoh_ok" -v as="$odoh_secs" -v b="$doh_ok" -v bs="$doh_secs" 'BEGIN {
	r = (b > 0 && bs > 0) ? (a / as) / (b / bs) : 0
	printf "\nODoH/DoH throughput ratio: %.2f (target >= 0.50)\n", r }'
echo "Handler allocations per ODoH query (go test -bench Handler/ODoH): ${allocs:-?}"
