# syntax=docker/dockerfile:1
#
# The odoh container images, one per program, all FROM scratch with the same
# files: the three static binaries (CGO_ENABLED=0) in /usr/local/bin, a CA
# bundle for upstream and target certificates, and a numeric non-root user
# (65532, as distroless "nonroot", so that Kubernetes can verify
# runAsNonRoot). No shell and no curl: each image's HEALTHCHECK runs the
# program's own -healthcheck mode, which asks its admin listener's /readyz.
#
#   odoh-target   ENTRYPOINT odoh-target, ports 443/tcp and 443/udp, admin 9551
#   odoh-proxy    ENTRYPOINT odoh-proxy,  ports 443/tcp and 443/udp, admin 9552
#   odoh          ENTRYPOINT odoh (the CLI; "odoh stub" serves DNS), admin 9553
#
# Where the binaries come from is the build argument BINARIES:
#
#   compile (default)  compiled here in GO_IMAGE from the build context's
#                      source: docker build --target odoh-proxy -t odoh-proxy .
#   context            copied from ROOTFS (bin/image/rootfs) of the build
#                      context, where "make image" puts binaries built on the
#                      host together with the host's CA bundle; no image is
#                      pulled, so it builds where no registry is reachable:
#                      make image   (podman build --build-arg BINARIES=context …)
#
# The stage not chosen is never built (BuildKit and buildah skip unused stages).

ARG BINARIES=compile
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
ARG ROOTFS=bin/image/rootfs

FROM ${GO_IMAGE} AS compile
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /rootfs/usr/local/bin/ ./cmd/... \
    && mkdir -p /rootfs/etc/ssl/certs \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

FROM scratch AS context
ARG ROOTFS
COPY ${ROOTFS}/ /rootfs/

FROM ${BINARIES} AS binaries

FROM scratch AS base
COPY --from=binaries /rootfs/ /
COPY deploy/image/passwd deploy/image/group /etc/
ARG VERSION=dev
LABEL org.opencontainers.image.title="odoh" \
      org.opencontainers.image.description="Oblivious DNS over HTTPS (RFC 9230): target, proxy, client and stub" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
USER 65532:65532
WORKDIR /

FROM base AS odoh-target
EXPOSE 443/tcp 443/udp 9551/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/odoh-target", "-healthcheck"]
ENTRYPOINT ["/usr/local/bin/odoh-target"]

FROM base AS odoh-proxy
EXPOSE 443/tcp 443/udp 9552/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/odoh-proxy", "-healthcheck"]
ENTRYPOINT ["/usr/local/bin/odoh-proxy"]

# The CLI for one-off lookups (podman run --rm localhost/odoh -proxy … NAME),
# and the stub: podman run -e ODOH_LISTEN=:53 … localhost/odoh stub (binding
# 53 needs the sysctl net.ipv4.ip_unprivileged_port_start=53). The health
# check asks the stub's admin listener; a one-off lookup exits before it runs.
FROM base AS odoh
EXPOSE 53/udp 53/tcp 9553/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/odoh", "stub", "-healthcheck"]
ENTRYPOINT ["/usr/local/bin/odoh"]
