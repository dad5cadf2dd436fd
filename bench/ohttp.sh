#!/usr/bin/env bash
# bench/ohttp.sh — DNS over Oblivious HTTP beside ODoH, on one deployment,
# in the same run: queries per second and CPU per query of
#
#   ODoH, target          h2load → odoh-target (ODoH)
#   OHTTP, target         h2load → odoh-target's gateway (OHTTP, DoH inside)
#   ODoH, via proxy       h2load → odoh-proxy → odoh-target
#   OHTTP, via relay      h2load → odoh-proxy's relay → odoh-target's gateway
#
# and the ratios OHTTP / ODoH on the target and through the proxy (target
# >= 0.8 both).
#
#   bash bench/ohttp.sh            (from anywhere; make bench runs it)
#
# Knobs (environment): PROCS (h2load processes = connections, default 8),
# STREAMS (concurrent streams per connection, 16), REQS (requests per process
# per round, 1250), ROUNDS (3), LOAD_TIMEOUT (seconds per h2load, 60).
#
# How: the target answers from a local zone. h2load POSTs the one body given
# with -d, so PROCS processes run in parallel, each with one connection and
# its own pre-encrypted query (bench/gen: ODoH messages and OHTTP
# Encapsulated Requests of the same DNS queries), fresh ones each round; the
# rounds alternate the four paths so that all see the same machine state.
# Everything shares this machine's cores.
set -euo pipefail

PROCS=${PROCS:-8}
STREAMS=${STREAMS:-16}
REQS=${REQS:-1250}
ROUNDS=${ROUNDS:-3}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-60}

cd "$(dirname "$0")/.."
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 1; }

. bench/lib.sh
bench_setup odoh-target odoh-proxy
bench_zone 64

# The gateway answers for its own address, which must be known first.
taddr="127.0.0.1:$(go run ./bench/gen port)"
"$work/odoh-target" -listen "$taddr" -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-local-zone "$work/bench.zone" -upstream udp://127.0.0.1:9 -cache-size 0 -ohttp-authority "$taddr" \
	-log-format json 2>"$work/target.log" &
tpid=$!
pids+=("$tpid")
taddr=$(wait_log "$work/target.log" listen)

"$work/odoh-proxy" -listen 127.0.0.1:0 -admin off -cert "$work/cert.pem" -key "$work/key.pem" \
	-allow-target "$taddr" -ca "$work/cert.pem" -client-rate 0 -max-concurrent-per-client -1 \
	-ohttp-gateway "https://$taddr/.well-known/ohttp-gateway" -log-format json 2>"$work/proxy.log" &
ppid=$!
pids+=("$ppid")
paddr=$(wait_log "$work/proxy.log" listen)

n=$((PROCS * (ROUNDS + 1)))
go run ./bench/gen queries -configs "https://$taddr/.well-known/odohconfigs" -ca "$work/cert.pem" \
	-ohttp-keys "https://$taddr/ohttp-keys" -ohttp-authority "$taddr" \
	-names "$work/names" -n "$n" -out "$work" >/dev/null

ticks=$(getconf CLK_TCK)

# The paths: KEY URL BODY-PREFIX CONTENT-TYPE PIDS (comma-separated).
odoh=application/oblivious-dns-message
req=message/ohttp-req
paths=(
	"odoh https://$taddr/dns-query odoh $odoh $tpid"
	"ohttp https://$taddr/.well-known/ohttp-gateway ohttp $req $tpid"
	"odohp https://$paddr/dns-query?targethost=$taddr&targetpath=%2Fdns-query odoh $odoh $tpid,$ppid"
	"ohttpp https://$paddr/ohttp/$taddr ohttp $req $tpid,$ppid"
)


# Warm up every path (connections, pools, the proxy's upstream connections).
REQS_SAVE=$REQS PROCS_SAVE=$PROCS
REQS=500 PROCS=2
for path in "${paths[@]}"; do h2load_round "$path" "$ROUNDS" >/dev/null; done
REQS=$REQS_SAVE PROCS=$PROCS_SAVE

declare -A ok failed secs cpu
for path in "${paths[@]}"; do
	k=${path%% *}
	ok[$k]=0 failed[$k]=0 secs[$k]=0 cpu[$k]=0
done
for r in $(seq 0 $((ROUNDS - 1))); do
	for path in "${paths[@]}"; do
		k=${path%% *}
		read -r o f s c _ < <(h2load_round "$path" "$r")
		ok[$k]=$((ok[$k] + o)) failed[$k]=$((failed[$k] + f)) cpu[$k]=$((cpu[$k] + c))
		secs[$k]=$(awk -v a="${secs[$k]}" -v b="$s" 'BEGIN {print a + b}')
	done
done

qps() { awk -v ok="${ok[$1]}" -v s="${secs[$1]}" 'BEGIN { printf "%.1f", (s > 0 ? ok / s : 0) }'; }
row() { # LABEL KEY CPU-NOTE
	awk -v p="$1" -v ok="${ok[$2]}" -v f="${failed[$2]}" -v s="${secs[$2]}" -v c="${cpu[$2]}" -v hz="$ticks" -v note="$3" 'BEGIN {
		qps = s > 0 ? ok / s : 0; us = ok > 0 ? c / hz * 1e6 / ok : 0
		printf "| %-18s | %10.0f | %8d | %6d | %8.1f%s |\n", p, qps, ok, f, us, note }'
}
ratio() { # A B: queries/s of A over B
	awk -v a="$(qps "$1")" -v b="$(qps "$2")" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'
}
echo
echo "DNS over OHTTP beside ODoH, one deployment: $PROCS connections x $STREAMS streams," \
	"$((PROCS * ROUNDS)) distinct queries per path, $ROUNDS rounds alternating, $(nproc) cores shared by all processes"
echo
echo "| path               | queries/s  |       ok | failed | CPU µs/query |"
echo "|--------------------|-----------:|---------:|-------:|-------------:|"
row "ODoH, target" odoh ""
row "OHTTP, target" ohttp ""
row "ODoH, via proxy" odohp " (target + proxy)"
row "OHTTP, via relay" ohttpp " (target + proxy)"
echo
echo "OHTTP / ODoH on the target:     $(ratio ohttp odoh) (target >= 0.80)"
echo "OHTTP / ODoH through the proxy: $(ratio ohttpp odohp) (target >= 0.80)"
echo "failed: $((failed[odoh] + failed[ohttp] + failed[odohp] + failed[ohttpp])) (target 0)"
