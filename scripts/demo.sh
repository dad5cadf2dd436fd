#!/usr/bin/env bash
# The whole system on this machine: an odoh-target answering a demo zone, an
# odoh-proxy that allows only that target, a local stub resolver, and a few
# private lookups through them (the CLI, then dig through the stub).
#
#   make demo                  (builds ./bin, runs this, stops everything)
#   DEMO_KEEP=1 make demo      (keeps the servers running until Ctrl-C)
#
# Everything listens on 127.0.0.1 only. Ports: TARGET_PORT (8443),
# PROXY_PORT (8444), STUB_PORT (5353). The target answers demo.test. from its
# local zone; other names go to the system resolvers.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin}
tport=${TARGET_PORT:-8443}
pport=${PROXY_PORT:-8444}
sport=${STUB_PORT:-5353}

for b in odoh-target odoh-proxy odoh; do
	[[ -x "$bin/$b" ]] || { echo "missing $bin/$b: run make build (or make demo)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a certificate for 127.0.0.1 and localhost, a seed, a zone"
go run ./bench/gen cert -dir "$work" >/dev/null
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
ls -l "$work"

step "odoh-target on 127.0.0.1:$tport (admin 127.0.0.1:$((tport + 1000)))"
"$bin/odoh-target" -listen "127.0.0.1:$tport" -admin "127.0.0.1:$((tport + 1000))" \
	-cert "$work/cert.pem" -key "$work/key.pem" -seed-file "$work/seed" \
	-local-zone "$work/demo.zone" -log-format text 2>"$work/target.log" &
pids+=($!)

step "odoh-proxy on 127.0.0.1:$pport, allowing only the target"
"$bin/odoh-proxy" -listen "127.0.0.1:$pport" -admin "127.0.0.1:$((pport + 1000))" \
	-cert "$work/cert.pem" -key "$work/key.pem" -ca "$work/cert.pem" \
	-allow-target "127.0.0.1:$tport" -log-format text 2>"$work/proxy.log" &
pids+=($!)

for _ in $(seq 50); do
	if curl -sf "http://127.0.0.1:$((tport + 1000))/readyz" >/dev/null 2>&1 &&
		curl -sf "http://127.0.0.1:$((pport + 1000))/readyz" >/dev/null 2>&1; then break; fi
	sleep 0.1
done
head -n 3 "$work/target.log" "$work/proxy.log"

# Proxy and target share 127.0.0.1 here, so the client's one-operator rule
# needs -allow-same-operator; in a real deployment they are two operators.
common=(-proxy "https://127.0.0.1:$pport/dns-query{?targethost,targetpath}"
	-target "https://127.0.0.1:$tport/dns-query" -ca "$work/cert.pem" -allow-same-operator)

step "odoh www.demo.test AAAA   (client → proxy → target, HTTP/2)"
"$bin/odoh" "${common[@]}" www.demo.test AAAA

step "odoh -http3 -json mail.demo.test MX   (HTTP/3; configs come through the proxy's relay)"
"$bin/odoh" "${common[@]}" -http3 -json mail.demo.test MX

step "odoh configs   (the target's keys)"
"$bin/odoh" configs "${common[@]}"

step "odoh stamp   (DNS stamps for DNS stubs such as dnscrypt-proxy)"
"$bin/odoh" stamp "${common[@]}"

step "odoh stub on 127.0.0.1:$sport, then dig through it"
"$bin/odoh" stub -listen "127.0.0.1:$sport" "${common[@]}" 2>"$work/stub.log" &
pids+=($!)
sleep 0.5
if command -v dig >/dev/null; then
	dig @127.0.0.1 -p "$sport" +noall +answer txt.demo.test TXT
	dig @127.0.0.1 -p "$sport" +tcp +noall +answer www.demo.test A
else
	echo "(dig not installed: apt-get install bind9-dnsutils)"
fi

step "metrics: counters only, no names and no addresses"
curl -s "http://127.0.0.1:$((tport + 1000))/metrics" | grep -E '^odoh_target_requests_total' | grep -v ' 0$'

if [[ -n "${DEMO_KEEP:-}" ]]; then
	step "running; Ctrl-C stops everything"
	wait
fi
