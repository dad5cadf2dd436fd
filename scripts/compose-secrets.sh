#!/usr/bin/env bash
# Writes what docker-compose.yml mounts as secrets into DIR (default
# deploy/compose/secrets): a private CA (ca.pem, ca.key), the target's and
# the proxy's certificates signed by it, and the target's seed. The
# certificates name the compose services (target, proxy) and the proxy also
# localhost and the loopback addresses, where the compose file publishes it.
# Files are given to uid 65532, the containers' user, when run as root.
# An existing DIR/ca.pem is kept: delete DIR for new secrets.
#
#   scripts/compose-secrets.sh [DIR]     (make compose-secrets)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${ODOH_SECRETS:-deploy/compose/secrets}}
if [[ -e $dir/ca.pem ]]; then
	echo "compose-secrets: $dir/ca.pem exists; keeping the secrets in $dir (delete it for new ones)"
	exit 0
fi
owner=()
if [[ $(id -u) == 0 ]]; then
	owner=(-owner 65532:65532)
fi
go run ./deploy/gensecrets -dir "$dir" "${owner[@]}" \
	-cert target=target,localhost \
	-cert proxy=proxy,localhost,127.0.0.1,::1
go run ./cmd/odoh keygen -out "$dir/seed"
if [[ ${#owner[@]} -gt 0 ]]; then
	chown 65532:65532 "$dir/seed"
else
	cat >&2 <<MSG
compose-secrets: not root, so the files stay yours; the containers run as
uid 65532 and must read them. Rootless podman: podman unshare chown -R
65532:65532 $dir (then ca.key too is theirs); Docker: sudo chown 65532:65532
$dir/*.pem $dir/*.key $dir/seed && sudo chown \$USER $dir/ca.key
MSG
fi
