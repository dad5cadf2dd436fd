#!/usr/bin/env bash
# bench/proxy.sh — what odoh-proxy costs: ODoH queries per second through
# h2load → odoh-proxy → odoh-target next to h2load → odoh-target directly and
# next to its floor, h2load → bench/floor relay (a plain net/http forwarding
# relay, no policy, no limits) → odoh-target, in the same run, with the same
# load, and the CPU each relay spends per query.
#
#   bash bench/proxy.sh            (from anywhere; make bench runs it)
#
# Knobs (environment): PROCS (h2load processes = connections, default 8),
# STREAMS (concurrent streams per connection, 16), REQS (requests per process
# per round, 2500), ROUNDS (3), LOAD_TIMEOUT (seconds per h2load, 60),
# BASE (a git revision: its odoh-proxy is built too and measured beside
# ours), PROFILE (a directory: odoh-proxy writes its CPU profile there).
#
# How: the target answers from a local zone. h2load POSTs the one body given
# with -d, so PROCS processes run in parallel, each with one connection
# (-c 1 -m STREAMS) and its own pre-encrypted query (from bench/gen), and each
# round uses fresh queries: 8 connections × 16 streams, PROCS×ROUNDS distinct
# queries per path. Rounds alternate direct / via proxy / via the floor relay
# so that all paths see the same machine state. Everything (h2load, proxy, target) shares this
# machine's cores, so the proxy competes with the target for CPU: the ratio
# measures the proxy's whole cost, not only its latency.
#
# The proxy runs with -client-rate 0 -max-concurrent-per-client -1: all load
# comes from one address, which the default per-client limits (100/s, 64 in
# progress) would throttle.
set -euo pipefail

PROCS=${PROCS:-8}
STREAMS=${STREAMS:-16}
REQS=${REQS:-2500}
ROUNDS=${ROUNDS:-3}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-60}

cd "$(dirname "$0")/.."
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 1; }

. bench/lib.sh
bench_setup odoh-target odoh-proxy floor
bench_zone 64

"$work/odoh-target" -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-local-zone "$work/bench.zone" -upstream udp://127.0.0.1:9 -log-format json 2>"$work/target.log" &
tpid=$!
pids+=("$tpid")
taddr=$(wait_log "$work/target.log" listen)

# shellcheck disable=SC2046 # prof prints nothing or two words
"$work/odoh-proxy" $(prof proxy) -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-allow-target "$taddr" -ca "$work/cert.pem" -client-rate 0 -max-concurrent-per-client -1 -log-format json 2>"$work/proxy.log" &
ppid=$!
pids+=("$ppid")
paddr=$(wait_log "$work/proxy.log" listen)

"$work/floor" relay -listen 127.0.0.1:0 -cert "$work/cert.pem" -key "$work/key.pem" -ca "$work/cert.pem" 2>"$work/floor.log" &
fpid=$!
pids+=("$fpid")
faddr=$(wait_log "$work/floor.log" listen)

if baserev=$(bench_base odoh-proxy); then
	"$work/base/odoh-proxy" -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
		-allow-target "$taddr" -ca "$work/cert.pem" -client-rate 0 -max-concurrent-per-client -1 -log-format json 2>"$work/base-proxy.log" &
	xpid=$!
	pids+=("$xpid")
	xaddr=$(wait_log "$work/base-proxy.log" listen)
fi

direct="https://$taddr/dns-query"
via="https://$paddr/dns-query?targethost=$taddr&targetpath=%2Fdns-query"
floor="https://$faddr/dns-query?targethost=$taddr&targetpath=%2Fdns-query"

base=${xaddr:+"https://$xaddr/dns-query?targethost=$taddr&targetpath=%2Fdns-query"}

n=$((PROCS * ROUNDS * 4 + 2))
go run ./bench/gen queries -configs "https://$taddr/.well-known/odohconfigs" -ca "$work/cert.pem" \
	-names "$work/names" -n "$n" -out "$work" >/dev/null

ticks=$(getconf CLK_TCK)

# round URL FIRST_QUERY REQS PROCS: one round of PROCS parallel h2load runs;
# prints "succeeded failed seconds".
round() {
	local url=$1 first=$2 reqs=$3 procs=$4 ok=0 failed=0 t0 t1 p out hp=()
	t0=$(date +%s.%N)
	for p in $(seq 0 $((procs - 1))); do
		timeout "$LOAD_TIMEOUT" h2load -n "$reqs" -c 1 -m "$STREAMS" \
			-d "$work/odoh-$((first + p)).bin" -H "content-type: application/oblivious-dns-message" \
			"$url" >"$work/h2load-$p.out" 2>&1 &
		hp+=($!)
	done
	wait "${hp[@]}" 2>/dev/null || true
	t1=$(date +%s.%N)
	for p in $(seq 0 $((procs - 1))); do
		out="$work/h2load-$p.out"
		# "status codes: 2500 2xx, 0 3xx, 0 4xx, 0 5xx": only 2xx count as ok,
		# everything else of the requested count as failed.
		local s
		s=$(awk '/^status codes:/ {print $3; exit}' "$out" || true)
		s=${s:-0}
		ok=$((ok + s))
		failed=$((failed + reqs - s))
	done
	echo "$ok $failed $(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
}

# Warm up both paths: connections, pools, the proxy's upstream connection.
round "$direct" 0 500 2 >/dev/null
round "$via" 0 500 2 >/dev/null
round "$floor" 0 500 2 >/dev/null
[[ -n "$base" ]] && round "$base" 0 500 2 >/dev/null

d_ok=0 d_failed=0 d_secs=0 v_ok=0 v_failed=0 v_secs=0 v_cpu=0 t_cpu_d=0 t_cpu_v=0
f_ok=0 f_failed=0 f_secs=0 f_cpu=0 t_cpu_f=0
x_ok=0 x_failed=0 x_secs=0 x_cpu=0 t_cpu_x=0
for r in $(seq 0 $((ROUNDS - 1))); do
	c0=$(cpu_ticks "$tpid")
	read -r ok failed secs < <(round "$direct" $((2 + r * 4 * PROCS)) "$REQS" "$PROCS")
	c1=$(cpu_ticks "$tpid")
	d_ok=$((d_ok + ok)); d_failed=$((d_failed + failed)); d_secs=$(awk -v a="$d_secs" -v b="$secs" 'BEGIN {print a + b}')
	t_cpu_d=$((t_cpu_d + c1 - c0))

	c0=$(cpu_ticks "$tpid"); p0=$(cpu_ticks "$ppid")
	read -r ok failed secs < <(round "$via" $((2 + r * 4 * PROCS + PROCS)) "$REQS" "$PROCS")
	c1=$(cpu_ticks "$tpid"); p1=$(cpu_ticks "$ppid")
	v_ok=$((v_ok + ok)); v_failed=$((v_failed + failed)); v_secs=$(awk -v a="$v_secs" -v b="$secs" 'BEGIN {print a + b}')
	t_cpu_v=$((t_cpu_v + c1 - c0)); v_cpu=$((v_cpu + p1 - p0))

	c0=$(cpu_ticks "$tpid"); p0=$(cpu_ticks "$fpid")
	read -r ok failed secs < <(round "$floor" $((2 + r * 4 * PROCS + 2 * PROCS)) "$REQS" "$PROCS")
	c1=$(cpu_ticks "$tpid"); p1=$(cpu_ticks "$fpid")
	f_ok=$((f_ok + ok)); f_failed=$((f_failed + failed)); f_secs=$(awk -v a="$f_secs" -v b="$secs" 'BEGIN {print a + b}')
	t_cpu_f=$((t_cpu_f + c1 - c0)); f_cpu=$((f_cpu + p1 - p0))

	[[ -n "$base" ]] || continue
	c0=$(cpu_ticks "$tpid"); p0=$(cpu_ticks "$xpid")
	read -r ok failed secs < <(round "$base" $((2 + r * 4 * PROCS + 3 * PROCS)) "$REQS" "$PROCS")
	c1=$(cpu_ticks "$tpid"); p1=$(cpu_ticks "$xpid")
	x_ok=$((x_ok + ok)); x_failed=$((x_failed + failed)); x_secs=$(awk -v a="$x_secs" -v b="$secs" 'BEGIN {print a + b}')
	t_cpu_x=$((t_cpu_x + c1 - c0)); x_cpu=$((x_cpu + p1 - p0))
done

row() { # path ok failed secs target-ticks proxy-ticks
	awk -v p="$1" -v ok="$2" -v f="$3" -v s="$4" -v tc="$5" -v pc="$6" -v hz="$ticks" 'BEGIN {
		qps = s > 0 ? ok / s : 0
		tus = ok > 0 ? tc / hz * 1e6 / ok : 0
		pus = (ok > 0 && pc != "") ? sprintf("%.1f", pc / hz * 1e6 / ok) : "–"
		printf "| %s | %.0f | %d | %d | %.1f | %s |\n", p, qps, ok, f, tus, pus }'
}
echo
echo "odoh-proxy: h2load $PROCS connections × $STREAMS streams, $REQS requests per connection per round," \
	"$ROUNDS rounds per path (alternating), target on a local zone, $(nproc) cores shared by all processes"
echo
echo "| path | queries/s | ok | failed | target µs/q | relay µs/q |"
echo "|---|---:|---:|---:|---:|---:|"
row "h2load → target"               "$d_ok" "$d_failed" "$d_secs" "$t_cpu_d" ""
row "h2load → odoh-proxy → target"  "$v_ok" "$v_failed" "$v_secs" "$t_cpu_v" "$v_cpu"
row "h2load → floor relay → target" "$f_ok" "$f_failed" "$f_secs" "$t_cpu_f" "$f_cpu"
[[ -n "$base" ]] && row "h2load → odoh-proxy $baserev → target" "$x_ok" "$x_failed" "$x_secs" "$t_cpu_x" "$x_cpu"
awk -v a="$v_ok" -v as="$v_secs" -v b="$d_ok" -v bs="$d_secs" -v f="$v_failed" 'BEGIN {
	r = (b > 0 && bs > 0 && as > 0) ? (a / as) / (b / bs) : 0
	printf "\nproxy path / direct: %.2f (target >= 0.70 with 0 failed; proxy path failed: %d)\n", r, f }'
awk -v a="$f_ok" -v as="$f_secs" -v b="$d_ok" -v bs="$d_secs" 'BEGIN {
	r = (b > 0 && bs > 0 && as > 0) ? (a / as) / (b / bs) : 0
	printf "floor relay path / direct: %.2f\n", r }'
awk -v vc="$v_cpu" -v vo="$v_ok" -v fc="$f_cpu" -v fo="$f_ok" 'BEGIN {
	r = (vo > 0 && fo > 0 && fc > 0) ? (vc / vo) / (fc / fo) : 0
	printf "odoh-proxy CPU per query / floor relay'"'"'s: %.2f (target <= 0.75)\n", r }'
if [[ -n "$base" ]]; then
	awk -v vc="$v_cpu" -v vo="$v_ok" -v xc="$x_cpu" -v xo="$x_ok" 'BEGIN {
		r = (vo > 0 && xo > 0 && xc > 0) ? (vc / vo) / (xc / xo) : 0
		printf "odoh-proxy CPU per query / the same built from '"$baserev"': %.2f\n", r }'
fi
