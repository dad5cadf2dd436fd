#!/usr/bin/env bash
# bench/client.sh — the client side of ODoH under load: dnsperf against the
# odoh stub (stub → odoh-proxy → odoh-target, all on loopback), over HTTP/2
# and HTTP/3, and against a plain DNS server holding the same data, in the
# same run, with the CPU each process spends per query.
#
#   bash bench/client.sh            (from anywhere; make bench runs it)
#
# Knobs (environment): DURATION (seconds per measured dnsperf run, default
# 10), INFLIGHT (queries in flight for the throughput rows, 64), ROUNDS
# (measured runs per row, 2), NAMES (distinct names in the zone and the query
# file, 1000), WARMUP (seconds of unmeasured load per path first, 3),
# RUN_TIMEOUT (seconds, bound on each dnsperf, 60), BASE (a git revision: its
# target, proxy and stub are built too and measured beside ours at INFLIGHT,
# e.g. BASE=HEAD~1 or BASE=main), PROFILE (a directory: our target, proxy
# and stubs, and BASE's, write their CPU profiles there).
#
# Honesty notes:
# - The stub's and the target's answer caches are disabled (-cache-size 0):
#   every query goes through the whole chain, so the figure is not a cache
#   benchmark.
# - The proxy runs with -client-rate 0 -max-concurrent-per-client -1: all load
#   comes from one address (the stub), which the default per-client limits
#   (100/s, 64 in progress) would throttle to 429s,
#   that the stub turns into SERVFAIL answers. dnsperf counts those as
#   answered, so the NOERROR column says how many answers were real ones.
# - The target answers from a local zone (-local-zone); the baseline is
#   Unbound on loopback serving the same names as local-data, the plain DNS
#   path a stub would otherwise use. Both answer from memory.
# - Proxy and target share 127.0.0.1, which the client refuses by default
#   (one operator); the bench passes -allow-same-operator to the stub.
# - All processes (dnsperf, stub, proxy, target, unbound) share this machine's
#   cores; the CPU columns (user+system time from /proc, per answered query)
#   say what each process costs, which the q/s of a shared machine cannot.
# - Each path first gets WARMUP seconds of unmeasured load (connections,
#   configs, goroutine stacks, heap). Each row is then measured ROUNDS times,
#   the paths taking turns so that they share the machine's noise, and the
#   best run is printed (highest q/s; at 1 in flight, lowest average).
# - At 1 query in flight dnsperf paces itself unpredictably (sometimes back
#   to back, sometimes one query per ~10 ms poll), and the gap between
#   queries changes the latency (an idle chain must wake every process). The
#   bench makes the gap explicit: -Q 100, one query per 10 ms, as a user's
#   sporadic lookups would arrive. The q/s column shows "–": the row is about
#   latency only.
set -euo pipefail

DURATION=${DURATION:-10}
INFLIGHT=${INFLIGHT:-64}
ROUNDS=${ROUNDS:-2}
NAMES=${NAMES:-1000}
WARMUP=${WARMUP:-3}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}

cd "$(dirname "$0")/.."
for tool in dnsperf unbound dig; do
	command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install dnsperf unbound bind9-dnsutils" >&2; exit 1; }
done

. bench/lib.sh
bench_setup odoh-target odoh-proxy odoh
bench_zone "$NAMES"
awk '{print $0 " A"}' "$work/names" >"$work/queries"

# shellcheck disable=SC2046 # prof prints nothing or two words
"$work/odoh-target" $(prof target) -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-cache-size 0 -local-zone "$work/bench.zone" -upstream udp://127.0.0.1:9 -log-format json 2>"$work/target.log" &
pids+=($!)
tpid=$!
taddr=$(wait_log "$work/target.log" listen)

# shellcheck disable=SC2046
"$work/odoh-proxy" $(prof proxy) -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-allow-target "$taddr" -ca "$work/cert.pem" -client-rate 0 -max-concurrent-per-client -1 -log-format json 2>"$work/proxy.log" &
pids+=($!)
ppid=$!
paddr=$(wait_log "$work/proxy.log" listen)

# start_stub NAME [flags]: start a stub logging to stub-NAME.log; its pid
# goes to $work/stub-NAME.pid.
start_stub() {
	local name=$1 log="$work/stub-$1.log" pidf="$work/stub-$1.pid"
	shift
	# shellcheck disable=SC2046
	"$work/odoh" stub $(prof "stub-$name") -listen 127.0.0.1:0 -admin off -cache-size 0 -allow-same-operator -ca "$work/cert.pem" \
		-proxy "https://$paddr/dns-query{?targethost,targetpath}" -target "https://$taddr/dns-query" \
		-log-format json "$@" 2>"$log" &
	pids+=($!)
	echo $! >"$pidf"
}
start_stub h2
start_stub h3 -http3
saddr2=$(wait_log "$work/stub-h2.log" addr)
saddr3=$(wait_log "$work/stub-h3.log" addr)
spid2=$(cat "$work/stub-h2.pid")
spid3=$(cat "$work/stub-h3.pid")

bench_unbound "$NAMES"

# With BASE=REV, the same chain (target, proxy, stub) built from REV runs
# beside this one, measured in the same rounds at INFLIGHT.
if baserev=$(bench_base odoh-target odoh-proxy odoh); then
	# shellcheck disable=SC2046
	"$work/base/odoh-target" $(prof base-target) -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
		-cache-size 0 -local-zone "$work/bench.zone" -upstream udp://127.0.0.1:9 -log-format json 2>"$work/base-target.log" &
	pids+=($!)
	btpid=$!
	btaddr=$(wait_log "$work/base-target.log" listen)
	# shellcheck disable=SC2046
	"$work/base/odoh-proxy" $(prof base-proxy) -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
		-allow-target "$btaddr" -ca "$work/cert.pem" -client-rate 0 -max-concurrent-per-client -1 -log-format json 2>"$work/base-proxy.log" &
	pids+=($!)
	bppid=$!
	bpaddr=$(wait_log "$work/base-proxy.log" listen)
	# A stub from before the stub's admin listener has no -admin flag.
	badmin=()
	"$work/base/odoh" stub -h 2>&1 | grep -q -- '-admin ADDR' && badmin=(-admin off)
	# shellcheck disable=SC2046
	"$work/base/odoh" stub $(prof base-stub) -listen 127.0.0.1:0 "${badmin[@]}" -cache-size 0 -allow-same-operator -ca "$work/cert.pem" \
		-proxy "https://$bpaddr/dns-query{?targethost,targetpath}" -target "https://$btaddr/dns-query" \
		-log-format json 2>"$work/stub-base.log" &
	pids+=($!)
	bspid=$!
	bsaddr=$(wait_log "$work/stub-base.log" addr)
fi

# Check that each path answers.
for a in "$saddr2" "$saddr3" "$uaddr" ${bsaddr:+"$bsaddr"}; do
	h=${a%:*}; p=${a##*:}
	ok=""
	for _ in $(seq 50); do
		dig +short +tries=1 +time=2 @"$h" -p "$p" q1.bench.test. A | grep -q 192.0.2 && { ok=1; break; }
		sleep 0.1
	done
	[[ -n "$ok" ]] || { echo "no answer from $a" >&2; exit 1; }
done

# ticks PID: user+system CPU time of a process, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# dnsperf_run ADDR QUERIES_IN_FLIGHT SECONDS: one bounded dnsperf run.
dnsperf_run() {
	local h=${1%:*} p=${1##*:} pace=()
	[[ $2 == 1 ]] && pace=(-Q 100)
	# -l bounds the time, -n the count (above what even Unbound answers in
	# that time), -t 2 counts a query unanswered after 2 s as lost.
	timeout "$RUN_TIMEOUT" dnsperf -s "$h" -p "$p" -d "$work/queries" -q "$2" -c 1 -l "$3" \
		-n $(( (DURATION * 300000) / NAMES + 1 )) -t 2 "${pace[@]}" 2>&1 || true
}

# measure KEY ADDR QUERIES_IN_FLIGHT PIDS...: one measured run; appends
# "qps avg_ms max_ms lost noerror completed cpu..." to $work/KEY.
measure() {
	local key=$1 addr=$2 q=$3
	shift 3
	local before=() after=() pid out
	for pid in "$@"; do before+=("$(ticks "$pid")"); done
	out=$(dnsperf_run "$addr" "$q" "$DURATION")
	for pid in "$@"; do after+=("$(ticks "$pid")"); done
	local n qps avg mx lost noerr cpu="" i
	n=$(awk '/Queries completed:/ {print $3}' <<<"$out")
	qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
	avg=$(awk '/Average Latency/ {print $4 * 1000}' <<<"$out")
	mx=$(awk '/Average Latency/ {gsub(/\)/, "", $8); print $8 * 1000}' <<<"$out")
	lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
	noerr=$(grep -o 'NOERROR [0-9]*' <<<"$out" | awk '{print $2}' || true)
	for i in "${!before[@]}"; do
		cpu+=" $(awk -v d=$((after[i] - before[i])) -v n="${n:-0}" -v hz="$hz" 'BEGIN { if (n > 0) printf "%.0f", d * 1e6 / hz / n; else print "?" }')"
	done
	echo "${qps:-0} ${avg:-0} ${mx:-0} ${lost:-?} ${noerr:-0} ${n:-0}$cpu" >>"$work/$key"
}

# best KEY latency|throughput: the best measured run of KEY.
best() {
	if [[ $2 == throughput ]]; then sort -k1,1gr "$work/$1" | head -1; else sort -k2,2g "$work/$1" | head -1; fi
}

# row LABEL KEY MODE CPU_LABEL: one table row from the best run of KEY.
row() {
	local r qps avg mx lost noerr n c1 c2 c3
	r=$(best "$2" "$3")
	read -r qps avg mx lost noerr n c1 c2 c3 <<<"$r"
	local shown=$(printf '%.0f' "$qps")
	[[ $3 == latency ]] && shown="–"
	local cpu
	if [[ $4 == chain ]]; then cpu="$c1 / $c2 / $c3"; else cpu="unbound $c1"; fi
	printf '| %s | %s | %s | %.3f | %.1f | %s | %s/%s | %s |\n' "$1" "${2##*-}" "$shown" "$avg" "$mx" "$lost" "$noerr" "$n" "$cpu"
}

echo "warming up (${WARMUP}s per path)…" >&2
for a in "$saddr2" "$saddr3" "$uaddr" ${bsaddr:+"$bsaddr"}; do dnsperf_run "$a" "$INFLIGHT" "$WARMUP" >/dev/null; done

for round in $(seq "$ROUNDS"); do
	echo "round $round/$ROUNDS…" >&2
	measure "h2-$INFLIGHT" "$saddr2" "$INFLIGHT" "$spid2" "$ppid" "$tpid"
	measure "h3-$INFLIGHT" "$saddr3" "$INFLIGHT" "$spid3" "$ppid" "$tpid"
	measure "dns-$INFLIGHT" "$uaddr" "$INFLIGHT" "$upid"
	[[ -n "${bsaddr:-}" ]] && measure "base-$INFLIGHT" "$bsaddr" "$INFLIGHT" "$bspid" "$bppid" "$btpid"
	measure "h2-1" "$saddr2" 1 "$spid2" "$ppid" "$tpid"
	measure "h3-1" "$saddr3" 1 "$spid3" "$ppid" "$tpid"
	measure "dns-1" "$uaddr" 1 "$upid"
done

echo
echo "odoh client bench: $NAMES distinct names, stub cache off, proxy without per-client rate limit,"
echo "${DURATION}s per run, best of $ROUNDS runs per row (paths alternate), $(nproc) cores shared by all processes"
echo
echo '| path | in flight | q/s | avg ms | max ms | lost | NOERROR/answered | CPU µs/query (stub / proxy / target) |'
echo '|---|---|---|---|---|---|---|---|'
row "stub → proxy → target (h2)" "h2-$INFLIGHT" throughput chain
row "stub → proxy → target (h3)" "h3-$INFLIGHT" throughput chain
row "plain DNS (Unbound, same data)" "dns-$INFLIGHT" throughput plain
[[ -n "${bsaddr:-}" ]] && row "the same h2 chain, built from $baserev" "base-$INFLIGHT" throughput chain
row "stub → proxy → target (h2)" "h2-1" latency chain
row "stub → proxy → target (h3)" "h3-1" latency chain
row "plain DNS (Unbound, same data)" "dns-1" latency plain
echo
h2=$(best "h2-$INFLIGHT" throughput | cut -d' ' -f1)
h3=$(best "h3-$INFLIGHT" throughput | cut -d' ' -f1)
awk -v a="${h3:-0}" -v b="${h2:-0}" 'BEGIN { if (b > 0) printf "h3/h2 throughput ratio at '"$INFLIGHT"' in flight: %.2f (target ≥ 0.80)\n", a / b }'
if [[ -n "${bsaddr:-}" ]]; then
	base=$(best "base-$INFLIGHT" throughput | cut -d' ' -f1)
	awk -v a="${h2:-0}" -v b="${base:-0}" 'BEGIN { if (b > 0) printf "stub chain h2 / the same built from '"$baserev"', '"$INFLIGHT"' in flight: %.2f (target ≥ 1.30)\n", a / b }'
	read -r _ _ _ _ _ _ o1 o2 o3 <<<"$(best "h2-$INFLIGHT" throughput)"
	read -r _ _ _ _ _ _ b1 b2 b3 <<<"$(best "base-$INFLIGHT" throughput)"
	[[ "$o1$o2$o3$b1$b2$b3" =~ ^[0-9]+$ ]] && awk -v o="$((o1 + o2 + o3))" -v b="$((b1 + b2 + b3))" 'BEGIN { if (o > 0) printf "the same by CPU per query (stub + proxy + target, steadier on a shared machine): %.2f\n", b / o }'
fi
echo "1 in flight: one query every 10 ms (dnsperf -Q 100), so q/s is \"–\"; the row is about latency"
echo "targets: stub h2 ≥ 4000 q/s with 0 lost at 64 in flight; ≤ 1 ms average at 1 in flight"
