#!/usr/bin/env bash
# deploy/measure.sh — the figures the Kubernetes resource requests and
# limits are sized from (README "Kubernetes"): CPU per query and memory of
# odoh-target and odoh-proxy, each as a Deployment replica runs it
# (GOMAXPROCS as the machine, default flags but the per-client limits: all
# load comes from one address here), under
#   1. a throughput load: h2load → proxy → target, PROCS connections × STREAMS
#      streams, REQS requests each (default 8 × 16 × 5000);
#   2. a connection load: CONNS client connections open at once through the
#      proxy (default 1000), one stream each, to see what each costs.
# It prints CPU µs per query (from /proc utime+stime), peak RSS (VmHWM) and
# the RSS after each step. Load generator and daemons share the machine:
# read the per-query and per-connection figures, not queries per second.
#
#   bash deploy/measure.sh
set -euo pipefail
PROCS=${PROCS:-8}
STREAMS=${STREAMS:-16}
REQS=${REQS:-5000}
CONNS=${CONNS:-1000}
cd "$(dirname "$0")/.."
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 1; }
. bench/lib.sh
bench_setup odoh-target odoh-proxy
bench_zone 64

"$work/odoh-target" -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-local-zone "$work/bench.zone" -upstream udp://127.0.0.1:9 -cache-size 10000 2>"$work/target.log" &
tpid=$!
pids+=("$tpid")
taddr=$(wait_log "$work/target.log" listen)
"$work/odoh-proxy" -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-allow-target "$taddr" -ca "$work/cert.pem" -client-rate 0 -max-concurrent-per-client -1 \
	-max-concurrent 100000 -max-conns-per-client -1 2>"$work/proxy.log" &
ppid=$!
pids+=("$ppid")
paddr=$(wait_log "$work/proxy.log" listen)
via="https://$paddr/dns-query?targethost=$taddr&targetpath=%2Fdns-query"
go run ./bench/gen queries -configs "https://$taddr/.well-known/odohconfigs" -ca "$work/cert.pem" \
	-names "$work/names" -n "$PROCS" -out "$work" >/dev/null

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
report() { # step
	printf '| %s | %s | %s | %s | %s |\n' "$1" \
		"$(mib "$(kib "$tpid" VmRSS)")" "$(mib "$(kib "$tpid" VmHWM)")" \
		"$(mib "$(kib "$ppid" VmRSS)")" "$(mib "$(kib "$ppid" VmHWM)")"
}
ok_of() { awk '/^status codes:/ {print $3; exit}' "$1"; }

echo "| step | target RSS MiB | target peak | proxy RSS MiB | proxy peak |"
echo "|---|---:|---:|---:|---:|"
report "started, idle"

t0=$(cpu "$tpid"); p0=$(cpu "$ppid"); hp=()
for p in $(seq 0 $((PROCS - 1))); do
	h2load -n "$REQS" -c 1 -m "$STREAMS" -d "$work/odoh-$p.bin" \
		-H "content-type: application/oblivious-dns-message" "$via" >"$work/h2-$p.out" 2>&1 &
	hp+=($!)
done
wait "${hp[@]}"
t1=$(cpu "$tpid"); p1=$(cpu "$ppid")
ok=0
for p in $(seq 0 $((PROCS - 1))); do ok=$((ok + $(ok_of "$work/h2-$p.out"))); done
report "after $ok queries ($PROCS conns × $STREAMS streams)"

# Connections: CONNS clients at once, each with a single request in flight.
c0p=$(kib "$ppid" VmRSS)
h2load -n "$CONNS" -c "$CONNS" -m 1 -d "$work/odoh-0.bin" \
	-H "content-type: application/oblivious-dns-message" "$via" >"$work/h2-conns.out" 2>&1 || true
report "after $CONNS client connections at once"
conns_ok=$(ok_of "$work/h2-conns.out")

awk -v tc=$((t1 - t0)) -v pc=$((p1 - p0)) -v ok="$ok" -v f=$((PROCS * REQS - ok)) -v hz="$ticks" 'BEGIN {
	printf "\nCPU per query under load: target %.0f µs, proxy %.0f µs (%d queries answered 200, %d not)\n",
		tc / hz * 1e6 / ok, pc / hz * 1e6 / ok, ok, f }'
awk -v a="$c0p" -v b="$(kib "$ppid" VmRSS)" -v n="$CONNS" -v ok="${conns_ok:-0}" 'BEGIN {
	printf "connection step: %d of %d answered 200; proxy RSS grew %.0f KiB per connection\n", ok, n, (b - a) / n }'
