#!/usr/bin/env bash
# bench/conncost.sh — what one connection and one request in flight cost a
# daemon in resident memory: idle HTTP/2 connections, idle HTTP/3
# connections, and HTTP/2 requests whose bodies are still arriving, each
# against a fresh odoh-target and a fresh odoh-proxy (caps off, so that
# one loopback client can open them all). The default connection caps of
# internal/httpserve follow from these figures (README, "Limits").
#
#   bash bench/conncost.sh        (from the repository root)
#
# Knobs (environment): CONNS (idle connections per run, default 2000),
# REQS (requests in flight, 2000).
set -euo pipefail

CONNS=${CONNS:-2000}
REQS=${REQS:-2000}

cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup odoh-target odoh-proxy
go build -o "$work/conncost" ./bench/conncost
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # room for the connections

nocaps=(-max-conns -1 -max-conns-per-client -1 -reset-budget -1 -read-timeout 5m -idle-timeout 5m -admin off)

start() { # start NAME ARGS...: starts a daemon, sets $pid and $addr
	local name=$1
	shift
	"$work/$name" -listen 127.0.0.1:0 -cert "$work/cert.pem" -key "$work/key.pem" "${nocaps[@]}" "$@" \
		-log-format json 2>"$work/$name.log" &
	pid=$!
	pids+=("$pid")
	addr=$(wait_log "$work/$name.log" listen)
}

stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; }

for daemon in odoh-target odoh-proxy; do
	for mode in h2 h3 inflight; do
		n=$CONNS
		[[ $mode == inflight ]] && n=$REQS
		if [[ $daemon == odoh-target ]]; then
			start odoh-target -upstream udp://127.0.0.1:9
			post=/dns-query
		else
			start odoh-proxy -allow-target 127.0.0.1:9 -client-rate 0 -max-concurrent-per-client -1 -body-read-timeout 5m
			post='/dns-query?targethost=127.0.0.1:9&targetpath=%2Fdns-query'
		fi
		printf '%-12s ' "$daemon"
		path=/.well-known/odohconfigs
		[[ $daemon == odoh-proxy ]] && path=/nowhere # a 404: no configs fetch
		"$work/conncost" -addr "$addr" -pid "$pid" -mode "$mode" -n "$n" -path "$path" -post "$post"
		stop
	done
done
