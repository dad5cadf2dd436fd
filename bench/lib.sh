# bench/lib.sh — sourced by the bench scripts (from the repository root):
# a work directory that is removed on exit with every process in $pids
# stopped, the binaries built there, a certificate, a local zone, and a
# wait for a daemon's start-up log line.

# bench_setup BINARY...: builds ./cmd/BINARY (./bench/floor for "floor")
# into $work, writes $work/cert.pem and $work/key.pem for 127.0.0.1 and
# localhost.
bench_setup() {
	work=$(mktemp -d)
	pids=()
	trap bench_cleanup EXIT
	local b
	for b in "$@"; do
		if [[ $b == floor ]]; then go build -o "$work/$b" ./bench/floor; else go build -o "$work/$b" "./cmd/$b"; fi
	done
	go run ./bench/gen cert -dir "$work"
}

# bench_base BINARY...: with BASE set to a git revision, builds ./cmd/BINARY
# of that revision into $work/base (from git archive, beside this tree), so
# that one run measures both; prints the revision's short name. Without
# BASE it does nothing and returns 1.
bench_base() {
	[[ -n "${BASE:-}" ]] || return 1
	local rev b
	rev=$(git rev-parse --short "$BASE^{commit}") || { echo "BASE=$BASE is not a revision" >&2; exit 1; }
	mkdir -p "$work/base-src" "$work/base"
	git archive "$rev" | tar -x -C "$work/base-src"
	for b in "$@"; do (cd "$work/base-src" && go build -o "$work/base/$b" "./cmd/$b"); done
	echo "$rev"
}

# bench_unbound N [TTL]: starts Unbound on a free 127.0.0.1 port answering
# the N names of bench_zone from local data with TTL (default 300; all else
# refused); sets $uaddr and $upid. $work/unbound.conf starts it again.
bench_unbound() {
	local port i ttl=${2:-300}
	port=$(go run ./bench/gen port)
	{
		echo 'server:'
		echo "  interface: 127.0.0.1"
		echo "  port: $port"
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
		echo '  local-zone: "." refuse'
		echo '  local-zone: "bench.test." static'
		for i in $(seq 0 $(($1 - 1))); do echo "  local-data: \"q$i.bench.test. $ttl IN A 192.0.2.$((i % 250 + 1))\""; done
		echo 'remote-control:'
		echo '  control-enable: no'
	} >"$work/unbound.conf"
	unbound -d -c "$work/unbound.conf" 2>"$work/unbound.log" &
	upid=$!
	pids+=("$upid")
	uaddr="127.0.0.1:$port"
	for _ in $(seq 50); do
		dig +short +tries=1 +time=1 @127.0.0.1 -p "$port" q0.bench.test. A | grep -q 192.0.2 && return 0
		sleep 0.1
	done
	echo "unbound did not answer:" >&2
	cat "$work/unbound.log" >&2
	return 1
}

bench_cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}

# bench_zone N: $work/bench.zone holds qI.bench.test. for I in [0, N), each
# with an A record, and $work/names lists those names.
bench_zone() {
	local i
	{
		echo '$ORIGIN bench.test.'
		echo '$TTL 300'
		echo '@ IN SOA ns.bench.test. admin.bench.test. 1 3600 600 86400 60'
		for i in $(seq 0 $(($1 - 1))); do echo "q$i IN A 192.0.2.$((i % 250 + 1))"; done
	} >"$work/bench.zone"
	for i in $(seq 0 $(($1 - 1))); do echo "q$i.bench.test."; done >"$work/names"
}

# wait_log FILE KEY: prints the first "KEY":"value" of a JSON log, waiting
# up to 10 s for the daemon to write it.
wait_log() {
	trap - EXIT # runs in a command substitution: never clean up from here
	local v=""
	for _ in $(seq 100); do
		v=$(grep -so "\"$2\":\"[^\"]*\"" "$1" | head -1 | cut -d'"' -f4 || true)
		[[ -n "$v" ]] && { echo "$v"; return 0; }
		sleep 0.1
	done
	echo "did not start:" >&2
	cat "$1" >&2
	return 1
}

# prof NAME: with PROFILE set to a directory, the flag that makes a daemon
# write its CPU profile there (PROFILE/NAME.prof, on exit) for go tool pprof.
prof() {
	[[ -n "${PROFILE:-}" ]] || return 0
	mkdir -p "$PROFILE"
	echo "-cpuprofile $(realpath "$PROFILE")/$1.prof"
}

cpu_ticks() { # PID...: their user+system times, space-separated
	local p t=()
	for p in "$@"; do t+=("$(awk '{print $14 + $15}' "/proc/$p/stat")"); done
	echo "${t[*]}"
}

# h2load_round PATH R: one round (PROCS h2load processes in parallel, each
# with its own body of the caller's n in $work) on PATH, a line of the
# caller's paths ("KEY URL BODY-PREFIX CONTENT-TYPE PIDS"); prints
# "succeeded failed seconds cputicks cputicks-of-the-first-process".
h2load_round() {
	local key url prefix ct pidlist ok=0 failed=0 t0 t1 c0 c1 p out s hp=()
	read -r key url prefix ct pidlist <<<"$1"
	local -a ps
	IFS=, read -r -a ps <<<"$pidlist"
	c0=$(cpu_ticks "${ps[@]}")
	t0=$(date +%s.%N)
	for p in $(seq 0 $((PROCS - 1))); do
		timeout "$LOAD_TIMEOUT" h2load -n "$REQS" -c 1 -m "$STREAMS" \
			-d "$work/$prefix-$((($2 * PROCS + p) % n)).bin" -H "content-type: $ct" "$url" \
			>"$work/h2load-$key-$p.out" 2>&1 &
		hp+=($!)
	done
	wait "${hp[@]}" 2>/dev/null || true
	t1=$(date +%s.%N)
	c1=$(cpu_ticks "${ps[@]}")
	for p in $(seq 0 $((PROCS - 1))); do
		out="$work/h2load-$key-$p.out"
		# "status codes: 2500 2xx, 0 3xx, 0 4xx, 0 5xx": only 2xx count as
		# ok, everything else of the requested count as failed.
		s=$(awk '/^status codes:/ {print $3; exit}' "$out" || true)
		s=${s:-0}
		ok=$((ok + s))
		failed=$((failed + REQS - s))
	done
	local -a a b
	read -r -a a <<<"$c0"
	read -r -a b <<<"$c1"
	local total=0 i
	for i in "${!a[@]}"; do total=$((total + b[i] - a[i])); done
	echo "$ok $failed $(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') $total $((b[0] - a[0]))"
}
