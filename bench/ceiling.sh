#!/usr/bin/env bash
# bench/ceiling.sh — the 1 GiB ceiling, shown: against a fresh odoh-target
# and a fresh odoh-proxy with their default caps, bench/ceiling fills every
# cap at once (-max-conns connections from the loopback addresses
# 127.0.1.0/24 up, -max-conns-per-client from each: HTTP/2, QUIC, HTTP/1.1
# slowloris headers; -max-requests requests whose bodies have arrived but
# for their last byte or trickle; a rapid reset on a few connections),
# while a well-behaved client holding one HTTP/2 and one HTTP/3 connection
# asks its question at each step; then it lets go and waits for the daemon
# to recover. It prints each daemon's peak RSS against 1 GiB and its Go
# heap against -memory-limit. The read, header and idle timeouts are
# raised so that no slot is freed while the caps fill: the worst case is
# every slot full at once, which clients that reconnect as the timeouts
# fire keep up. The proxy's well-behaved client fetches a third daemon's
# (an unflooded odoh-target's) configs through it. Exits 1 if a cap does
# not fill or hold, the good client is not answered, the daemon does not
# recover, or a peak reaches the ceiling.
#
#   bash bench/ceiling.sh        (from the repository root; make ceiling)
#
# Knobs (environment): CEILING (MiB, default 1024); MAX_CONNS,
# PER_CLIENT and MAX_REQUESTS set the daemons' -max-conns,
# -max-conns-per-client and -max-requests (default: their defaults; make
# ceiling-short runs it small, for make check).
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup odoh-target odoh-proxy
go build -o "$work/ceiling" ./bench/ceiling
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # room for the connections

caps=() tool=()
[[ -n "${MAX_CONNS:-}" ]] && caps+=(-max-conns "$MAX_CONNS") tool+=(-conns "$MAX_CONNS")
[[ -n "${PER_CLIENT:-}" ]] && caps+=(-max-conns-per-client "$PER_CLIENT") tool+=(-per-client "$PER_CLIENT")
[[ -n "${MAX_REQUESTS:-}" ]] && caps+=(-max-requests "$MAX_REQUESTS") tool+=(-requests "$MAX_REQUESTS")
slow=(-read-timeout 10m -read-header-timeout 10m -idle-timeout 10m)

# The unflooded target behind the proxy.
"$work/odoh-target" -listen 127.0.0.1:0 -cert "$work/cert.pem" -key "$work/key.pem" -admin off \
	-upstream udp://127.0.0.1:9 -log-format json 2>"$work/backend.log" &
pids+=("$!")
backend=$(wait_log "$work/backend.log" listen)

rc=0
for daemon in odoh-target odoh-proxy; do
	args=(-listen 127.0.0.1:0 -cert "$work/cert.pem" -key "$work/key.pem" -admin 127.0.0.1:0 -log-format json "${slow[@]}" "${caps[@]}")
	if [[ $daemon == odoh-target ]]; then
		args+=(-upstream udp://127.0.0.1:9)
		post=/dns-query path=/.well-known/odohconfigs
	else
		args+=(-allow-target "$backend" -ca "$work/cert.pem" -body-read-timeout 10m)
		post="/dns-query?targethost=$backend&targetpath=%2Fdns-query" path="/.well-known/odohconfigs?targethost=$backend"
	fi
	"$work/$daemon" "${args[@]}" 2>"$work/$daemon.log" &
	pid=$!
	pids+=("$pid")
	addr=$(wait_log "$work/$daemon.log" listen)
	admin=$(wait_log "$work/$daemon.log" admin)
	"$work/ceiling" -addr "$addr" -pid "$pid" -admin "$admin" -metrics-prefix "${daemon//-/_}" \
		-post "$post" -path "$path" -ceiling "${CEILING:-1024}" "${tool[@]}" || rc=1
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
done
exit $rc
