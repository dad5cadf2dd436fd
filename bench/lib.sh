# bench/lib.sh — sourced by the bench scripts (from the repository root):
# a work directory that is removed on exit with every process in $pids
# stopped, the binaries built there, a certificate, a local zone, and a
# wait for a daemon's start-up log line.

# bench_setup BINARY...: builds ./cmd/BINARY into $work, writes
# $work/cert.pem and $work/key.pem for 127.0.0.1 and localhost.
bench_setup() {
	work=$(mktemp -d)
	pids=()
	trap bench_cleanup EXIT
	local b
	for b in "$@"; do go build -o "$work/$b" "./cmd/$b"; done
	go run ./bench/gen cert -dir "$work"
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
		v=$(grep -o "\"$2\":\"[^\"]*\"" "$1" | head -1 | cut -d'"' -f4 || true)
		[[ -n "$v" ]] && { echo "$v"; return 0; }
		sleep 0.1
	done
	echo "did not start:" >&2
	cat "$1" >&2
	return 1
}
