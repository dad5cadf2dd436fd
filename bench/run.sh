#!/usr/bin/env bash
# bench/run.sh — every benchmark of the project in one run, printed as one
# report: the protocol core against bare circl (go test -bench), the target
# (h2load, ODoH vs plain DoH), the proxy (h2load, via proxy vs direct), DNS
# over Oblivious HTTP beside ODoH (h2load, on the target and through the
# relay) and the client chain (dnsperf through the stub vs plain DNS; h3 vs h2).
#
#   bash bench/run.sh              (make bench runs it)
#   ONLY=target bash bench/run.sh  (one part: core, target, proxy, ohttp or client)
#   BASE=main make bench           (also build that revision's binaries and
#                                   measure them beside ours, in the same rounds)
#   PROFILE=DIR make bench         (the daemons write CPU profiles into DIR)
#
# The machine is shared and noisy: each part measures its comparisons side
# by side in the same run, so read the ratios, not the absolute figures.
set -euo pipefail
cd "$(dirname "$0")/.."
only=${ONLY:-}

part() { [[ -z "$only" || "$only" == "$1" ]]; }

echo "# odoh benchmarks — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(go version | awk '{print $3}'), load average $(cut -d" " -f1-3 /proc/loadavg)${BASE:+, BASE=$BASE}"

if part core; then
	echo
	echo "## Protocol core (go test -bench ./odoh)"
	echo
	go test -run '^$' -bench 'Client|Target' -benchmem -benchtime 3000x ./odoh |
		awk '/^Benchmark/ {print "    " $0}'
	echo
	echo "TargetOverhead: ratio = target transaction / bare circl operations, interleaved (target <= 1.15)"
fi
if part target; then
	echo
	echo "## Target (bench/target.sh)"
	bash bench/target.sh
fi
if part proxy; then
	echo
	echo "## Proxy (bench/proxy.sh)"
	bash bench/proxy.sh
fi
if part ohttp; then
	echo
	echo "## DNS over Oblivious HTTP beside ODoH (bench/ohttp.sh)"
	bash bench/ohttp.sh
fi
if part client; then
	echo
	echo "## Client chain (bench/client.sh)"
	bash bench/client.sh
fi
