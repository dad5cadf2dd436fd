#!/usr/bin/env bash
# The whole system on this machine: an odoh-target answering a demo zone, an
# odoh-proxy that allows only that target, a local stub resolver, and a few
# private lookups through them (the CLI, then dig through the stub).
#
#   make demo                  (builds into ./bin, runs this, stops everything)
#   DEMO_KEEP=1 make demo      (keeps the servers running until Ctrl-C)
#
# Needs Go and make, nothing else (dig, if installed, shows the stub too).
# Everything listens on 127.0.0.1 only. Ports: TARGET_PORT (8443),
# PROXY_PORT (8444), STUB_PORT (8053: not the stub's default 5353, which is
# also mDNS's, held on many desktops by avahi-daemon), and the admin
# listeners' defaults,
# TARGET_ADMIN (127.0.0.1:9551), PROXY_ADMIN (127.0.0.1:9552) and
# STUB_ADMIN (127.0.0.1:9553). The target
# answers demo.test. from its local zone; other names go to the system
# resolvers. If a daemon cannot start (a port is taken) or dies, the demo
# stops at once with its last log lines.
set -eEuo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin}
tport=${TARGET_PORT:-8443}
pport=${PROXY_PORT:-8444}
sport=${STUB_PORT:-8053}
tadmin=${TARGET_ADMIN:-127.0.0.1:9551}
padmin=${PROXY_ADMIN:-127.0.0.1:9552}
sadmin=${STUB_ADMIN:-127.0.0.1:9553}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

work=$(mktemp -d)
pids=() names=() logs=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# died: if a daemon has exited, prints its last log lines and exits 1.
died() {
	local i
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			printf '\n\033[1;31m%s stopped.\033[0m Its last log lines:\n' "${names[$i]}" >&2
			tail -n 15 "${logs[$i]}" >&2
			if grep -q "address already in use" "${logs[$i]}"; then
				echo "A port is taken: set TARGET_PORT, PROXY_PORT, STUB_PORT, TARGET_ADMIN, PROXY_ADMIN or STUB_ADMIN." >&2
			fi
			exit 1
		fi
	done
}
# A failing step may be a daemon that died under it: say so.
trap 'died' ERR

# start NAME LOG COMMAND...: runs a daemon in the background.
start() {
	local name=$1 log=$2
	shift 2
	"$@" 2>"$log" &
	pids+=($!) names+=("$name") logs+=("$log")
}

# wait_ready NAME CHECK...: waits up to 10 s for CHECK to succeed while the
# daemons run, and stops the demo when one dies.
wait_ready() {
	local name=$1
	shift
	for _ in $(seq 100); do
		died
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	died
	echo "$name did not become ready in 10 s; its log:" >&2
	cat "${logs[-1]}" >&2
	exit 1
}

step "building the binaries into $bin/"
if [[ ! -x $bin/odoh-target || ! -x $bin/odoh-proxy || ! -x $bin/odoh ]]; then
	echo "(the first build downloads the Go modules and compiles them: a few minutes; later builds take seconds)"
fi
# go build is silent while it works: count what it downloads and compiles.
mkdir -p "$bin"
go build -v -trimpath -ldflags "${LDFLAGS:-}" -o "$bin/" ./cmd/... 2>&1 | awk '
	function show() { printf "\r  %scompiled %d packages ", d ? "downloaded " d " modules, " : "", c; fflush() }
	/^go: downloading / { d++; show(); next }
	/^[a-z0-9.\/_-]+$/  { c++; show(); next }
	{ print }
	END { if (d + c) print "" }'
go build -o "$work/" ./deploy/gensecrets
echo "  done"

step "a private CA and certificates for 127.0.0.1 and localhost, a seed, a zone"
"$work/gensecrets" -dir "$work" -cert target=localhost,127.0.0.1 -cert proxy=localhost,127.0.0.1
"$bin/odoh" keygen -out "$work/seed"
cat >"$work/demo.zone" <<'ZONE'
$ORIGIN demo.test.
$TTL 300
@     IN SOA ns.demo.test. admin.demo.test. 1 3600 600 86400 60
@     IN NS  ns.demo.test.
www   IN A    192.0.2.10
www   IN AAAA 2001:db8::10
mail  IN MX   10 mx.demo.test.
txt   IN TXT  "served by odoh-target from its local zone"
ZONE

step "odoh-target on 127.0.0.1:$tport (admin $tadmin)"
start odoh-target "$work/target.log" "$bin/odoh-target" -listen "127.0.0.1:$tport" -admin "$tadmin" \
	-cert "$work/target.pem" -key "$work/target.key" -seed-file "$work/seed" \
	-local-zone "$work/demo.zone" -log-format text
# -healthcheck asks the daemon's /readyz: no curl needed.
wait_ready odoh-target "$bin/odoh-target" -healthcheck -admin "$tadmin"
head -n 1 "$work/target.log"

step "odoh-proxy on 127.0.0.1:$pport (admin $padmin), allowing only the target"
start odoh-proxy "$work/proxy.log" "$bin/odoh-proxy" -listen "127.0.0.1:$pport" -admin "$padmin" \
	-cert "$work/proxy.pem" -key "$work/proxy.key" -ca "$work/ca.pem" \
	-allow-target "127.0.0.1:$tport" -log-format text
wait_ready odoh-proxy "$bin/odoh-proxy" -healthcheck -admin "$padmin"
head -n 1 "$work/proxy.log"

# Proxy and target share 127.0.0.1 here, so the client's one-operator rule
# needs -allow-same-operator; in a real deployment they are two operators.
common=(-proxy "https://127.0.0.1:$pport/dns-query{?targethost,targetpath}"
	-target "https://127.0.0.1:$tport/dns-query" -ca "$work/ca.pem" -allow-same-operator)

step "odoh www.demo.test AAAA   (client → proxy → target, HTTP/2)"
"$bin/odoh" "${common[@]}" www.demo.test AAAA

step "odoh -http3 -json mail.demo.test MX   (HTTP/3; configs from the target through the proxy's tunnel)"
"$bin/odoh" "${common[@]}" -http3 -json mail.demo.test MX

step "odoh configs   (the target's keys)"
"$bin/odoh" configs "${common[@]}"

step "odoh stamp   (DNS stamps for DNS stubs such as dnscrypt-proxy)"
"$bin/odoh" stamp -proxy "https://127.0.0.1:$pport/dns-query{?targethost,targetpath}" -target "https://127.0.0.1:$tport/dns-query"

step "odoh stub on 127.0.0.1:$sport (admin $sadmin), then dig through it"
start "odoh stub" "$work/stub.log" "$bin/odoh" stub -listen "127.0.0.1:$sport" -admin "$sadmin" "${common[@]}"
wait_ready "odoh stub" "$bin/odoh" stub -healthcheck -admin "$sadmin"
if command -v dig >/dev/null; then
	dig @127.0.0.1 -p "$sport" +noall +answer txt.demo.test TXT
	dig @127.0.0.1 -p "$sport" +tcp +noall +answer www.demo.test A
else
	echo "(dig not installed: apt-get install bind9-dnsutils)"
fi

step "metrics: counters only, no names and no addresses"
# A plain HTTP GET with bash's /dev/tcp, so that curl is not needed.
exec 3<>"/dev/tcp/${tadmin%:*}/${tadmin##*:}"
printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$tadmin" >&3
grep -E '^odoh_target_requests_total' <&3 | grep -v ' 0$' || true
exec 3<&-
died

if [[ -n "${DEMO_KEEP:-}" ]]; then
	step "running; Ctrl-C stops everything"
	while sleep 1; do died; done
fi
