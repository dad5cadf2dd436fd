#!/usr/bin/env bash
# Builds CoreDNS from the Go module proxy and packages it FROM scratch, as
# the CoreDNS project's own image is, for machines where that image cannot
# be pulled (CI here). The binary holds the plugins deploy/compose's
# Corefile uses (see deploy/compose/coredns-build); the version is the one
# in its go.mod.
#
#   scripts/coredns-image.sh [IMAGE]     (default localhost/odoh-coredns:VERSION)
#   ODOH_RESOLVER_IMAGE=IMAGE podman-compose up -d
#
# The binary is cached in $ODOH_CACHE (default ~/.cache/odoh) and an
# existing image is kept, so only the first run compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
src=deploy/compose/coredns-build
version=$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" { print $3 }' "$src/go.mod")
[[ -n $version ]] || { echo "coredns-image: no CoreDNS version in $src/go.mod" >&2; exit 1; }
image=${1:-localhost/odoh-coredns:${version#v}}
engine=${CONTAINER:-podman}

if "$engine" image inspect "$image" >/dev/null 2>&1; then
	echo "coredns-image: $image exists"
	exit 0
fi
ctx=${ODOH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/odoh}/coredns-$version
mkdir -p "$ctx"
if [[ ! -x $ctx/coredns ]]; then
	echo "coredns-image: compiling CoreDNS $version (the first time takes a few minutes)"
	# A name of its own: two test runs may build at once.
	(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$ctx/coredns.$$" .)
	mv "$ctx/coredns.$$" "$ctx/coredns"
fi
# As the project's image: uid 65532, and the capability to bind 53 on the
# binary (where setcap exists; podman also grants it to the process).
if command -v setcap >/dev/null && [[ $(id -u) == 0 ]]; then
	setcap cap_net_bind_service=+ep "$ctx/coredns"
fi
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY coredns /coredns
USER 65532:65532
EXPOSE 53 53/udp
ENTRYPOINT ["/coredns"]
DOCKERFILE
"$engine" build -q -t "$image" "$ctx" >/dev/null
echo "coredns-image: built $image"
