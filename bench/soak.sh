#!/usr/bin/env bash
# bench/soak.sh — the whole chain under steady load for minutes while its
# parts are broken and repaired (make soak). On loopback only:
#
#   dnsperf → odoh stub → odoh-proxy → odoh-target → relay → Unbound
#   h2load  ──────────────↗ (pre-sealed ODoH queries straight to the proxy)
#
# First it measures the chain's capacity (dnsperf through the stub, h2load
# through the proxy, each alone, CAP_SECONDS each), then drives it at LOAD %
# of that (half of it from each tool) for SOAK_MINUTES, in seven equal
# phases:
#
#   steady     no fault
#   rotate     a new target seed, then SIGHUP the target (a new key)
#   hup        SIGHUP both servers (nothing changed)
#   proxy      the proxy stopped (SIGTERM) and started again on its port
#   upstream   Unbound stopped, started again after a quarter of the phase
#   cert       new certificates for both servers, then SIGHUP both
#   cool       no fault
#
# A fault starts a quarter into its phase; for proxy and upstream it ends
# half-way. Per phase it prints what dnsperf sent, answered (NOERROR,
# SERVFAIL) and lost, its p50/p99 latency, and what h2load sent and got
# (2xx, 401 for queries sealed to a rotated key, other failures); a prober
# asks through the stub every 50 ms and gives the time from the end of each
# fault to the last failed answer in its phase (recovery). Per process (target, proxy,
# stub) it prints RSS, goroutines (go_goroutines of its admin /metrics) and
# open files at the start of the soak (after the capacity runs), at their
# peak and at the end (LOAD_SETTLE seconds after the load stopped); and the
# amplification while Unbound is away: queries the target sent upstream
# (counted by the relay, which Unbound's absence does not stop) over the
# queries it received (its odoh_target_requests_total), in the same window.
#
# Knobs (environment): SOAK_MINUTES (5), LOAD (70, percent of capacity),
# CAP_SECONDS (5), NAMES (1000, with TTL seconds each, 2: answers expire
# during the soak, so the target's cache keeps asking Unbound and serves
# stale answers while it is away), PROCS (h2load processes, 4),
# STREAMS (8), LOAD_SETTLE (150: past the 2 minutes after which Go forces a
# garbage collection, so that the end figures are not garbage awaiting one); SOAK_OUT=DIR keeps the raw outputs
# (samples, probe, dnsperf and h2load outputs, logs) in DIR.
#
# It exits non-zero when a daemon died, or when a query was lost outside
# the proxy and upstream phases; the other targets are printed as met or
# MISSED (the machine is shared: read the figures).
set -euo pipefail

SOAK_MINUTES=${SOAK_MINUTES:-5}
LOAD=${LOAD:-70}
CAP_SECONDS=${CAP_SECONDS:-5}
NAMES=${NAMES:-1000}
TTL=${TTL:-2}
PROCS=${PROCS:-4}
STREAMS=${STREAMS:-8}
LOAD_SETTLE=${LOAD_SETTLE:-150}

cd "$(dirname "$0")/.."
for tool in dnsperf h2load unbound dig; do
	command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install dnsperf nghttp2-client unbound bind9-dnsutils" >&2; exit 1; }
done

. bench/lib.sh
bench_setup odoh-target odoh-proxy odoh
go build -o "$work/gen" ./bench/gen
bench_zone "$NAMES"
awk '{print $0 " A"}' "$work/names" >"$work/queries"
bench_unbound "$NAMES" "$TTL"

phase_secs=$(((SOAK_MINUTES * 60) / 7))
((phase_secs >= 4)) || phase_secs=4

# The CA is $work/cert.pem (bench_setup's self-signed certificate); the
# servers present leaves it issues, replaced in the cert phase.
mkdir -p "$work/serve"
"$work/gen" cert -dir "$work/serve" -sign-with "$work"
head -c 32 /dev/urandom >"$work/seed"
chmod 600 "$work/seed"

"$work/gen" relay -upstream "$uaddr" -count-file "$work/upstream.count" >"$work/relay.addr" &
pids+=($!)
for _ in $(seq 50); do [[ -s "$work/relay.addr" ]] && break; sleep 0.1; done
raddr=$(cat "$work/relay.addr")

"$work/odoh-target" -listen 127.0.0.1:0 -admin 127.0.0.1:0 -cert "$work/serve/cert.pem" -key "$work/serve/key.pem" \
	-seed-file "$work/seed" -upstream "udp://$raddr" -log-format json 2>"$work/target.log" &
tpid=$!
pids+=("$tpid")
taddr=$(wait_log "$work/target.log" listen)
tadmin=$(wait_log "$work/target.log" admin)

# start_proxy ADDR: starts odoh-proxy on ADDR; sets $ppid and $paddr.
start_proxy() {
	"$work/odoh-proxy" -listen "$1" -admin 127.0.0.1:0 -cert "$work/serve/cert.pem" -key "$work/serve/key.pem" \
		-allow-target "$taddr" -ca "$work/cert.pem" -client-rate 0 -max-concurrent-per-client -1 \
		-log-format json 2>>"$work/proxy.log" &
	ppid=$!
	pids+=("$ppid")
	local lines=$(($(wc -l <"$work/proxy.log")))
	for _ in $(seq 100); do
		tail -n +"$((lines + 1))" "$work/proxy.log" | grep -q '"msg":"odoh-proxy serving"' && break
		kill -0 "$ppid" 2>/dev/null || { echo "odoh-proxy died:" >&2; tail "$work/proxy.log" >&2; exit 1; }
		sleep 0.05
	done
	local line
	line=$(grep '"msg":"odoh-proxy serving"' "$work/proxy.log" | tail -1)
	paddr=$(grep -o '"listen":"[^"]*"' <<<"$line" | cut -d'"' -f4)
	echo "$ppid $(grep -o '"admin":"[^"]*"' <<<"$line" | cut -d'"' -f4)" >"$work/proxy.current"
}
: >"$work/proxy.log"
start_proxy 127.0.0.1:0

"$work/odoh" stub -listen 127.0.0.1:0 -admin 127.0.0.1:0 -cache-size 0 -allow-same-operator -ca "$work/cert.pem" \
	-proxy "https://$paddr/dns-query{?targethost,targetpath}" -target "https://$taddr/dns-query" \
	-log-format json 2>"$work/stub.log" &
spid=$!
pids+=("$spid")
saddr=$(wait_log "$work/stub.log" addr)
sadmin=$(wait_log "$work/stub.log" admin)
for _ in $(seq 50); do
	dig +short +tries=1 +time=2 @"${saddr%:*}" -p "${saddr##*:}" q1.bench.test. A | grep -q 192.0.2 && break
	sleep 0.1
done

# h2load_queries: fresh pre-sealed queries for the target's current key.
h2load_queries() {
	rm -f "$work"/odoh-*.bin "$work"/doh-*.bin
	"$work/gen" queries -configs "https://$taddr/.well-known/odohconfigs" -ca "$work/cert.pem" \
		-names "$work/names" -n "$PROCS" -out "$work" >/dev/null
}
h2load_queries
via="https://$paddr/dns-query?targethost=$taddr&targetpath=%2Fdns-query"

# run_h2load SECONDS RPS OUT: PROCS h2load processes for SECONDS (RPS
# requests per second each, 0: as fast as they can); their outputs are
# OUT-I.
run_h2load() {
	local p rate=() hp=()
	[[ $2 == 0 ]] || rate=(--rps "$2")
	for p in $(seq 0 $((PROCS - 1))); do
		timeout $(($1 + 30)) h2load -D "$1" -c 1 -m "$STREAMS" "${rate[@]}" -d "$work/odoh-$p.bin" \
			-H "content-type: application/oblivious-dns-message" "$via" >"$3-$p" 2>&1 &
		hp+=($!)
	done
	wait "${hp[@]}" 2>/dev/null || true
}

# h2load_sum FILES...: "done 2xx 4xx failed" over h2load outputs ("requests:
# N total, N started, N done, …"; "status codes: N 2xx, N 3xx, N 4xx, N
# 5xx"). The 4xx are the 401s of queries sealed to a rotated key (the
# target answers nothing else 4xx to them); failed is the rest.
h2load_sum() {
	awk '/^requests:/ {done += $6}
		/^status codes:/ {ok += $3; c4 += $7}
		END {f = done - ok - c4; printf "%d %d %d %d\n", done, ok, c4, (f > 0 ? f : 0)}' "$@"
}

# dnsperf_run SECONDS QPS OUT: one dnsperf run (QPS 0: unpaced, 64 in
# flight), every query's rcode and latency in OUT (-v).
dnsperf_run() {
	local pace=()
	[[ $2 == 0 ]] || pace=(-Q "$2")
	timeout $(($1 + 30)) dnsperf -s "${saddr%:*}" -p "${saddr##*:}" -d "$work/queries" -q 64 -c 4 -l "$1" -t 5 -v \
		"${pace[@]}" >"$3" 2>&1 || true
}

# dnsperf_sum FILE: "sent completed lost noerror servfail p50_ms p99_ms".
dnsperf_sum() {
	local sent completed lost noerr servfail pct
	sent=$(awk '/Queries sent:/ {print $3}' "$1")
	completed=$(awk '/Queries completed:/ {print $3}' "$1")
	lost=$(awk '/Queries lost:/ {print $3}' "$1")
	noerr=$(grep -o 'NOERROR [0-9]*' "$1" | tail -1 | awk '{print $2}' || true)
	servfail=$(grep -o 'SERVFAIL [0-9]*' "$1" | tail -1 | awk '{print $2}' || true)
	# -v lines: "> RCODE NAME TYPE LATENCY" for each answered query.
	pct=$(awk '/^> [A-Z]+ .* [0-9.]+$/ {print $NF * 1000}' "$1" | sort -g | awk '{v[NR] = $1}
		END {if (NR == 0) {print "– –"; exit}
			p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
			printf "%.2f %.2f\n", p50, p99}')
	echo "${sent:-0} ${completed:-0} ${lost:-0} ${noerr:-0} ${servfail:-0} $pct"
}

echo "measuring capacity (${CAP_SECONDS}s each)…" >&2
dnsperf_run "$CAP_SECONDS" 0 "$work/cap-dnsperf"
read -r _ cap_done _ _ _ _ _ < <(dnsperf_sum "$work/cap-dnsperf")
run_h2load "$CAP_SECONDS" 0 "$work/cap-h2load"
read -r _ cap_ok _ _ < <(h2load_sum "$work"/cap-h2load-*)
cap_dns=$((cap_done / CAP_SECONDS))
cap_h2=$((cap_ok / CAP_SECONDS))
dns_qps=$((cap_dns * LOAD / 200))
h2_rps=$((cap_h2 * LOAD / 200 / PROCS))
((dns_qps > 0)) || dns_qps=1
((h2_rps > 0)) || h2_rps=1

# The sampler: every second, per process, "TIME PHASE ROLE RSS_KB FDS
# GOROUTINES HEAP_INUSE_KB". The proxy's pid and admin address change when it restarts.
# runtime ADMIN: "GOROUTINES HEAP_INUSE_KB" from a daemon's /metrics.
runtime_stats() {
	local host=${1%:*} port=${1##*:} n
	n=$( (exec 3<>"/dev/tcp/$host/$port" && printf 'GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n' >&3 &&
		awk '$1 == "go_goroutines" {g = $2} $1 == "go_memstats_heap_inuse_bytes" {h = $2 / 1024}
			END {if (g != "") printf "%d %d\n", g, h}' <&3) 2>/dev/null || true)
	echo "${n:-? ?}"
}
sample() {
	local role pid admin rss fds
	for role in target proxy stub; do
		case $role in
		target) pid=$tpid admin=$tadmin ;;
		proxy) read -r pid admin <"$work/proxy.current" ;;
		stub) pid=$spid admin=$sadmin ;;
		esac
		rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo "?")
		fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
		echo "$(date +%s.%N) $(cat "$work/phase") $role ${rss:-?} $fds $(runtime_stats "$admin")"
	done
}
echo start >"$work/phase"
sample >"$work/samples"
( trap - EXIT; while :; do sleep 1; sample >>"$work/samples"; done ) &
sampler=$!
pids+=("$sampler")

# The prober asks for 20 names in turn, 20 queries a second: without its
# cache the stub forwards at most 8 queries for one name at once
# (-max-inflight-per-name) and answers SERVFAIL beyond, so a prober asking
# one name that often would measure that limit whenever latency passes
# 400 ms, not the faults.
"$work/gen" probe -addr "$saddr" -name "$(head -20 "$work/names" | paste -sd,)" -every 50ms -timeout 5s >"$work/probe" &
prober=$!
pids+=("$prober")

now_ms() { date +%s%3N; }
metric() { # ADMIN NAME: the sum of a metric's samples
	local host=${1%:*} port=${1##*:}
	(exec 3<>"/dev/tcp/$host/$port" && printf 'GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n' >&3 &&
		awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {print s + 0}' <&3) 2>/dev/null || echo 0
}

# gone PID: waits (up to 60 s) for a process that is not our child to exit.
gone() {
	for _ in $(seq 1200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
	echo "process $1 did not exit" >&2
	return 1
}

# fault PHASE: breaks (and for proxy and upstream repairs) one part, a
# quarter into the phase; writes the fault's end time (ms) to PHASE.end.
fault() {
	local q=$((phase_secs * 1000 / 4)) t0
	sleep "$(awk -v q="$q" 'BEGIN {print q / 1000}')"
	case $1 in
	rotate)
		head -c 32 /dev/urandom >"$work/seed.new" && chmod 600 "$work/seed.new" && mv "$work/seed.new" "$work/seed"
		kill -HUP "$tpid" ;;
	hup) kill -HUP "$tpid"; read -r p _ <"$work/proxy.current"; kill -HUP "$p" ;;
	proxy)
		read -r p _ <"$work/proxy.current"
		kill -TERM "$p"
		gone "$p"
		sleep "$(awk -v q="$q" 'BEGIN {print q / 1000}')"
		start_proxy "$paddr" ;;
	upstream)
		local a0 u0
		kill -TERM "$upid"
		gone "$upid"
		a0=$(metric "$tadmin" odoh_target_requests_total) u0=$(cat "$work/upstream.count")
		sleep "$(awk -v q="$q" 'BEGIN {print q / 1000}')"
		echo "$(($(cat "$work/upstream.count") - u0)) $(awk -v a="$(metric "$tadmin" odoh_target_requests_total)" -v b="$a0" 'BEGIN {print a - b}')" \
			>"$work/amplification"
		unbound -d -c "$work/unbound.conf" 2>>"$work/unbound.log" &
		echo $! >"$work/unbound.pid"
		for _ in $(seq 100); do
			dig +short +tries=1 +time=1 @"${uaddr%:*}" -p "${uaddr##*:}" q0.bench.test. A | grep -q 192.0.2 && break
			sleep 0.05
		done ;;
	cert)
		"$work/gen" cert -dir "$work/serve" -sign-with "$work"
		kill -HUP "$tpid"; read -r p _ <"$work/proxy.current"; kill -HUP "$p" ;;
	esac
	now_ms >"$work/$1.end"
}

phases=(steady rotate hup proxy upstream cert cool)
echo "soak: ${SOAK_MINUTES} min in ${#phases[@]} phases of ${phase_secs}s at ${LOAD}% of capacity" \
	"(dnsperf ${dns_qps} q/s, h2load ${h2_rps} req/s × ${PROCS})…" >&2
t_start=$(now_ms)
for ph in "${phases[@]}"; do
	echo "$ph" >"$work/phase"
	now_ms >"$work/$ph.start"
	# Fresh queries for the key in force: those sealed before the rotate
	# phase's new key get 401 for the rest of that phase (the 401 column),
	# as a client that never refetches its configs would.
	h2load_queries
	dnsperf_run "$phase_secs" "$dns_qps" "$work/dnsperf-$ph" &
	dp=$!
	run_h2load "$phase_secs" "$h2_rps" "$work/h2load-$ph" &
	hp=$!
	fp=""
	case $ph in steady | cool) ;; *) fault "$ph" & fp=$! ;; esac
	wait "$dp" "$hp" ${fp:+"$fp"} 2>/dev/null || true
	now_ms >"$work/$ph.next"
	[[ -s "$work/unbound.pid" ]] && { upid=$(cat "$work/unbound.pid"); pids+=("$upid"); : >"$work/unbound.pid"; }
	read -r ppid _ <"$work/proxy.current"
	pids+=("$ppid")
	echo "  $ph done" >&2
done
t_end=$(now_ms)
echo end >"$work/phase"
sleep "$LOAD_SETTLE"
sample >>"$work/samples"
kill "$sampler" "$prober" 2>/dev/null || true
wait "$prober" 2>/dev/null || true
if [[ -n "${SOAK_OUT:-}" ]]; then
	mkdir -p "$SOAK_OUT"
	cp "$work"/{samples,probe,amplification,*.log,dnsperf-*,h2load-*,*.start,*.end,*.next} "$SOAK_OUT"/ 2>/dev/null || true
fi

died=""
for role in target stub; do
	pid=$tpid; [[ $role == stub ]] && pid=$spid
	kill -0 "$pid" 2>/dev/null || died+=" $role"
done
read -r p _ <"$work/proxy.current"
kill -0 "$p" 2>/dev/null || died+=" proxy"

echo
echo "odoh soak: ${SOAK_MINUTES} min, ${#phases[@]} phases of ${phase_secs}s, $(nproc) cores shared by every process;" \
	"capacity alone: dnsperf via the stub ${cap_dns} q/s, h2load via the proxy ${cap_h2} req/s;" \
	"load ${LOAD}%: dnsperf ${dns_qps} q/s + h2load $((h2_rps * PROCS)) req/s; ${NAMES} names, TTL ${TTL}s"
echo
echo "| phase | dnsperf sent | answered | NOERROR | SERVFAIL | lost | p50 ms | p99 ms | h2load sent | 2xx | 401 (old key) | failed | recovery |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
lost_outside=0
max_recovery=0
for ph in "${phases[@]}"; do
	read -r sent done lost noerr servfail p50 p99 < <(dnsperf_sum "$work/dnsperf-$ph")
	read -r hsent hok h4 hfail < <(h2load_sum "$work/h2load-$ph"-*)
	rec="–"
	if [[ -s "$work/$ph.end" ]]; then
		# Recovery: from the fault's end to just after the last probe sent
		# after it that failed (0 when none did).
		e=$(cat "$work/$ph.end") next=$(cat "$work/$ph.next")
		rec=$(awk -v e="$e" -v n="$next" '$1 >= e && $1 < n && $2 != "NOERROR" && $1 > last {last = $1}
			END {printf "%d", last ? last - e + 50 : 0}' "$work/probe")
		((rec > max_recovery)) && max_recovery=$rec
		rec="${rec} ms"
	fi
	case $ph in proxy | upstream) ;; *) lost_outside=$((lost_outside + lost)) ;; esac
	echo "| $ph | $sent | $done | $noerr | $servfail | $lost | $p50 | $p99 | $hsent | $hok | $h4 | $hfail | $rec |"
done

echo
echo "| process | RSS MiB start / peak / end | Go heap in use MiB start / peak / end | goroutines start / peak / end | open files start / peak / end |"
echo "|---|---|---|---|---|"
for role in target proxy stub; do
	awk -v r="$role" '$3 == r && $4 != "?" && $6 != "?" {
			if (!n++) {rs = $4; gs = $6; fs = $5; hs = $7}
			if ($4 > rp) rp = $4; if ($6 > gp) gp = $6; if ($5 > fp) fp = $5; if ($7 > hp) hp = $7
			re = $4; ge = $6; fe = $5; he = $7 }
		END {printf "| %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %s / %s / %s | %s / %s / %s |\n",
			r, rs / 1024, rp / 1024, re / 1024, hs / 1024, hp / 1024, he / 1024, gs, gp, ge, fs, fp, fe}' \
		"$work/samples"
done
read -r up_q tgt_q <"$work/amplification" || true
echo
awk -v u="${up_q:-0}" -v c="${tgt_q:-0}" -v s="$(awk -v q="$((phase_secs * 1000 / 4))" 'BEGIN {print q / 1000}')" 'BEGIN {
	printf "amplification while Unbound was away (%.1f s): %d upstream queries (at the relay) / %d queries the target received = %.3f\n",
		s, u, c, (c > 0 ? u / c : 0) }'

echo
verdict() { if [[ $1 == 1 ]]; then echo "met: $2"; else echo "MISSED: $2"; fi; }
verdict "$((lost_outside == 0))" "0 queries lost outside the proxy and upstream phases ($lost_outside lost)"
verdict "$((max_recovery <= 1000))" "recovery within 1 s of each fault ending (slowest ${max_recovery} ms)"
for role in target proxy stub; do
	awk -v r="$role" '$3 == r && $4 != "?" && $6 != "?" {if (!n++) {rs = $4; gs = $6}; re = $4; ge = $6}
		END {ok = re <= rs * 1.1 && ge <= gs * 1.1
			printf "%s: %s RSS %.1f → %.1f MiB, goroutines %s → %s (within 10%% of the start)\n", ok ? "met" : "MISSED", r, rs / 1024, re / 1024, gs, ge}' \
		"$work/samples"
done
[[ -z "$died" ]] || { echo "FAILED: died during the soak:$died"; tail -n 20 "$work"/*.log >&2; exit 1; }
((lost_outside == 0)) || exit 1
