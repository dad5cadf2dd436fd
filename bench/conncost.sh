#!/usr/bin/env bash
# bench/conncost.sh — what one connection and one request in flight cost a
# daemon in resident memory: idle HTTP/2 connections, idle HTTP/3
# connections, HTTP/2 requests whose 65000-byte bodies have arrived but for
# their last byte (inflight: the worst a request can cost) and requests
# that declared 65000 bytes and sent 16 (trickle), each against a fresh
# odoh-target and a fresh odoh-proxy (caps off, so that one loopback client
# can open them all). The default connection caps of internal/httpserve
# follow from these figures (README, "Limits").
#
#   bash bench/conncost.sh        (from the repository root)
#
# Knobs (environment): CONNS (idle connections per run, default 2000),
# REQS (requests in flight, 2000), BASE (a git revision: its binaries are
# measured too, each run beside this tree's).
set -euo pipefail

CONNS=${CONNS:-2000}
REQS=${REQS:-2000}

cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup odoh-target odoh-proxy
go build -o "$work/conncost" ./bench/conncost
builds=("$work")
if base=$(bench_base odoh-target odoh-proxy); then builds+=("$work/base"); fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # room for the connections

nocaps=(-max-conns -1 -max-conns-per-client -1 -reset-budget -1 -read-timeout 5m -idle-timeout 5m -admin 127.0.0.1:0)

start() { # start DIR NAME ARGS...: starts DIR/NAME, sets $pid, $addr and $admin
	local dir=$1 name=$2
	shift 2
	"$dir/$name" -listen 127.0.0.1:0 -cert "$work/cert.pem" -key "$work/key.pem" "${nocaps[@]}" "$@" \
		-log-format json 2>"$work/$name.log" &
	pid=$!
	pids+=("$pid")
	addr=$(wait_log "$work/$name.log" listen)
	admin=$(wait_log "$work/$name.log" admin)
}

stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; }

for daemon in odoh-target odoh-proxy; do
	for mode in h2 h3 inflight trickle; do
		for dir in "${builds[@]}"; do
			n=$CONNS
			extra=()
			case $mode in
			inflight) n=$REQS ;;
			trickle) n=$REQS extra=(-sent 16) ;;
			esac
			if [[ $daemon == odoh-target ]]; then
				start "$dir" odoh-target -upstream udp://127.0.0.1:9
				post=/dns-query
			else
				start "$dir" odoh-proxy -allow-target 127.0.0.1:9 -client-rate 0 -max-concurrent-per-client -1 -body-read-timeout 5m
				post='/dns-query?targethost=127.0.0.1:9&targetpath=%2Fdns-query'
			fi
			build=this
			[[ $dir != "$work" ]] && build=$base
			printf '%-12s %-8s ' "$daemon" "$build"
			path=/.well-known/odohconfigs
			[[ $daemon == odoh-proxy ]] && path=/nowhere # a 404: no configs fetch
			"$work/conncost" -addr "$addr" -pid "$pid" -admin "$admin" -mode "${mode/trickle/inflight}" -n "$n" -path "$path" -post "$post" "${extra[@]}"
			stop
		done
	done
done
