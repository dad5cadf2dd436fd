// Package deploy holds what runs odoh in production and the tests that run
// it for real: the container images (../Dockerfile) built with podman,
// ../docker-compose.yml brought up with podman-compose and queried from the
// host, and the systemd units of systemd/ verified and scored by
// systemd-analyze. The Kubernetes manifests of kubernetes/ are tested by
// that directory's own module. Nothing here is imported.
package deploy
