// Package kubernetes holds the tests of the Kubernetes manifests beside it:
// every manifest decoded strictly into the k8s.io/api types, the kustomize
// bases rendered with the kustomize library, and the invariants of a safe
// odoh deployment asserted on the result. It is a module of its own, so
// that the odoh module does not depend on Kubernetes; "make test" runs it.
package kubernetes
