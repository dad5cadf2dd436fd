#!/usr/bin/env bash
# bench/client.sh — the client side of ODoH under load: dnsperf against the
# odoh stub (stub → odoh-proxy → odoh-target, all on loopback), over HTTP/2
# and HTTP/3, and against a plain DNS server holding the same data, in the
# same run.
#
#   bash bench/client.sh            (from anywhere; make bench runs it)
#
# Knobs (environment): DURATION (seconds per dnsperf run, default 10),
# INFLIGHT (queries in flight for the throughput runs, 64), NAMES (distinct
# names in the zone and the query file, 1000), RUN_TIMEOUT (seconds, bound on
# each dnsperf, 60).
#
# Honesty notes:
# - The stub's answer cache is disabled (-cache-size 0): every query goes
#   through the whole chain, so the figure is not a cache benchmark.
# - The target answers from a local zone (-local-zone); the baseline is
#   Unbound on loopback serving the same names as local-data, the plain DNS
#   path a stub would otherwise use. Both answer from memory.
# - Proxy and target share 127.0.0.1, which the client refuses by default
#   (one operator); the bench passes -allow-same-operator to the stub.
# - All processes (dnsperf, stub, proxy, target, unbound) share this machine's
#   cores.
set -euo pipefail

DURATION=${DURATION:-10}
INFLIGHT=${INFLIGHT:-64}
NAMES=${NAMES:-1000}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}

cd "$(dirname "$0")/.."
for tool in dnsperf unbound; do
	command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install dnsperf unbound" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/odoh-target" ./cmd/odoh-target
go build -o "$work/odoh-proxy" ./cmd/odoh-proxy
go build -o "$work/odoh" ./cmd/odoh
go run ./bench/gen cert -dir "$work"

{
	echo '$ORIGIN bench.test.'
	echo '$TTL 300'
	echo '@ IN SOA ns.bench.test. admin.bench.test. 1 3600 600 86400 60'
	for i in $(seq 0 $((NAMES - 1))); do echo "q$i IN A 192.0.2.$((i % 250 + 1))"; done
} >"$work/bench.zone"
for i in $(seq 0 $((NAMES - 1))); do echo "q$i.bench.test. A"; done >"$work/queries"

# wait_log FILE KEY: print the first "KEY":"value" of a JSON log.
wait_log() {
	trap - EXIT # runs in a command substitution: never clean up from here
	local v=""
	for _ in $(seq 100); do
		v=$(grep -o "\"$2\":\"[^\"]*\"" "$1" | head -1 | cut -d'"' -f4 || true)
		[[ -n "$v" ]] && { echo "$v"; return 0; }
		sleep 0.1
	done
	echo "did not start:" >&2; cat "$1" >&2; return 1
}

"$work/odoh-target" -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-local-zone "$work/bench.zone" -upstream udp://127.0.0.1:9 -log-format json 2>"$work/target.log" &
pids+=($!)
taddr=$(wait_log "$work/target.log" listen)

"$work/odoh-proxy" -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-allow-target "$taddr" -ca "$work/cert.pem" -log-format json 2>"$work/proxy.log" &
pids+=($!)
paddr=$(wait_log "$work/proxy.log" listen)

# start_stub NAME [flags]: start a stub logging to stub-NAME.log.
start_stub() {
	local log="$work/stub-$1.log"
	shift
	"$work/odoh" stub -listen 127.0.0.1:0 -cache-size 0 -allow-same-operator -ca "$work/cert.pem" \
		-proxy "https://$paddr/dns-query{?targethost,targetpath}" -target "https://$taddr/dns-query" \
		-log-format json "$@" 2>"$log" &
	pids+=($!)
}
start_stub h2
start_stub h3 -http3
saddr2=$(wait_log "$work/stub-h2.log" addr)
saddr3=$(wait_log "$work/stub-h3.log" addr)

uport=$(( (RANDOM % 20000) + 30000 ))
{
	echo 'server:'
	echo "  interface: 127.0.0.1"
	echo "  port: $uport"
	echo '  do-ip6: no'
	echo '  username: ""'
	echo '  chroot: ""'
	echo "  directory: \"$work\""
	echo '  pidfile: ""'
	echo '  use-syslog: no'
	echo '  logfile: ""'
	echo '  do-daemonize: no'
	echo '  num-threads: 1'
	echo '  access-control: 127.0.0.0/8 allow'
	echo '  local-zone: "bench.test." static'
	for i in $(seq 0 $((NAMES - 1))); do echo "  local-data: \"q$i.bench.test. 300 IN A 192.0.2.$((i % 250 + 1))\""; done
	echo 'remote-control:'
	echo '  control-enable: no'
} >"$work/unbound.conf"
unbound -d -c "$work/unbound.conf" 2>"$work/unbound.log" &
pids+=($!)

# Warm up: connections, configs, and a check that each path answers.
for a in "$saddr2" "$saddr3"; do
	h=${a%:*}; p=${a##*:}
	for _ in $(seq 50); do
		dig +short +tries=1 +time=2 @"$h" -p "$p" q1.bench.test. A | grep -q 192.0.2 && break
		sleep 0.1
	done
done
for _ in $(seq 50); do dig +short +tries=1 +time=1 @127.0.0.1 -p "$uport" q1.bench.test. A | grep -q 192.0.2 && break; sleep 0.1; done

# perf LABEL ADDR QUERIES_IN_FLIGHT: one dnsperf run, one table row.
perf() {
	local h=${2%:*} p=${2##*:} out
	out=$(timeout "$RUN_TIMEOUT" dnsperf -s "$h" -p "$p" -d "$work/queries" -q "$3" -c 1 -l "$DURATION" -t 2 2>&1) || true
	local qps avg mx lost
	qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
	avg=$(awk '/Average Latency/ {print $4}' <<<"$out")
	mx=$(awk '/Average Latency/ {gsub(/\)/,"",$8); print $8}' <<<"$out")
	lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
	printf '| %s | %s | %.0f | %.3f | %.3f | %s |\n' "$1" "$3" "${qps:-0}" "$(awk "BEGIN{print ${avg:-0}*1000}")" \
		"$(awk "BEGIN{print ${mx:-0}*1000}")" "${lost:-?}"
	echo "$qps" >"$work/qps-$1-$3"
}

echo
echo "odoh client bench: $NAMES distinct names, stub cache off, ${DURATION}s per run, $(nproc) cores shared by all processes"
echo
echo '| path | in flight | q/s | avg ms | max ms | lost |'
echo '|---|---|---|---|---|---|'
perf "stub → proxy → target (h2)" "$saddr2" "$INFLIGHT"
perf "stub → proxy → target (h3)" "$saddr3" "$INFLIGHT"
perf "plain DNS (Unbound, same data)" "127.0.0.1:$uport" "$INFLIGHT"
perf "stub → proxy → target (h2)" "$saddr2" 1
perf "stub → proxy → target (h3)" "$saddr3" 1
perf "plain DNS (Unbound, same data)" "127.0.0.1:$uport" 1
echo
h2=$(cat "$work/qps-stub → proxy → target (h2)-$INFLIGHT")
h3=$(cat "$work/qps-stub → proxy → target (h3)-$INFLIGHT")
awk -v a="${h3:-0}" -v b="${h2:-0}" 'BEGIN { if (b > 0) printf "h3/h2 throughput ratio at '"$INFLIGHT"' in flight: %.2f (target ≥ 0.80)\n", a / b }'
echo "targets: stub h2 ≥ 4000 q/s with 0 lost at 64 in flight; ≤ 1 ms average at 1 in flight"
