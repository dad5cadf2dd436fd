package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// roles are the two halves; each is a kustomization of its own.
var roles = []string{"target", "proxy"}

// decoder decodes YAML into the k8s.io/api types of the kinds the manifests
// use, strictly: an unknown or duplicated field is an error, so a typo
// (readinesProbe, runAsNonroot) fails here rather than being dropped
// silently by the API server's older, lenient clients.
func decoder(t *testing.T) runtime.Decoder {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}

// decodeAll decodes every YAML document of data; documents holding only
// comments are skipped.
func decodeAll(t *testing.T, dec runtime.Decoder, name string, data []byte) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Errorf("%s, document %d: %v", name, i, err)
			continue
		}
		objs = append(objs, obj)
	}
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			out.Write(l)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// manifestFiles are the YAML files that kubectl would apply: all but the
// kustomizations.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".yaml") && d.Name() != "kustomization.yaml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestStrictDecoderRejectsTypos: the decoder the other tests rely on does
// fail on an unknown field.
func TestStrictDecoderRejectsTypos(t *testing.T) {
	dec := decoder(t)
	bad := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  selectr: {a: b}\n")
	if _, _, err := dec.Decode(bad, nil, nil); err == nil || !strings.Contains(err.Error(), "selectr") {
		t.Errorf("unknown field decoded: %v", err)
	}
	good := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  selector: {a: b}\n")
	if _, _, err := dec.Decode(good, nil, nil); err != nil {
		t.Errorf("valid Service refused: %v", err)
	}
}

// TestManifestsDecodeStrictly decodes every manifest file as written.
func TestManifestsDecodeStrictly(t *testing.T) {
	dec := decoder(t)
	files := manifestFiles(t)
	if len(files) < 7 {
		t.Fatalf("found only %d manifest files: %q", len(files), files)
	}
	var objs []runtime.Object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, decodeAll(t, dec, f, data)...)
	}
	r := index(t, objs)
	// One namespace, and each kind once per half.
	for kind, c := range map[string]struct{ got, want int }{
		"Namespace":               {len(r.namespaces), 1},
		"Deployment":              {len(r.deployments), len(roles)},
		"Service":                 {len(r.services), len(roles)},
		"PodDisruptionBudget":     {len(r.pdbs), len(roles)},
		"HorizontalPodAutoscaler": {len(r.hpas), len(roles)},
		"NetworkPolicy":           {len(r.policies), len(roles)},
	} {
		if c.got != c.want {
			t.Errorf("%d %s manifests, want %d", c.got, kind, c.want)
		}
	}
}

// testSeed is what the test puts where "odoh keygen" would write the seed.
var testSeed = bytes.Repeat([]byte{0x5e}, 32)

// render runs kustomize on dir (relative to this one) over an in-memory
// copy of the tree, with a seed file added as an operator would.
func render(t *testing.T, dir string) []byte {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".go") || strings.HasPrefix(d.Name(), "go.") || d.Name() == "seed" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join("/k", filepath.ToSlash(p)), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteFile("/k/target/seed", testSeed); err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, path.Join("/k", dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rendered indexes the objects of one kustomize build.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	policies    map[string]*networkingv1.NetworkPolicy
	secrets     map[string]*corev1.Secret
	configMaps  map[string]*corev1.ConfigMap
	namespaces  map[string]*corev1.Namespace
	all         []runtime.Object
}

func index(t *testing.T, objs []runtime.Object) *rendered {
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		policies: map[string]*networkingv1.NetworkPolicy{}, secrets: map[string]*corev1.Secret{},
		configMaps: map[string]*corev1.ConfigMap{}, namespaces: map[string]*corev1.Namespace{}, all: objs,
	}
	for _, obj := range objs {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			r.deployments[o.Name] = o
		case *corev1.Service:
			r.services[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			r.pdbs[o.Name] = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			r.hpas[o.Name] = o
		case *networkingv1.NetworkPolicy:
			r.policies[o.Name] = o
		case *corev1.Secret:
			r.secrets[o.Name] = o
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Namespace:
			r.namespaces[o.Name] = o
		default:
			t.Errorf("unexpected object %T", obj)
		}
	}
	return r
}

// TestRender builds the whole base and each half, decodes the output
// strictly and checks the invariants of each half on it.
func TestRender(t *testing.T) {
	dec := decoder(t)
	whole := index(t, decodeAll(t, dec, "kustomize build .", render(t, ".")))
	if ns := whole.namespaces["odoh"]; ns == nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace odoh missing or not enforcing the restricted Pod Security Standard: %+v", ns)
	}
	for _, obj := range whole.all {
		if m, ok := obj.(interface{ GetNamespace() string }); ok {
			if _, isNS := obj.(*corev1.Namespace); !isNS && m.GetNamespace() != "odoh" {
				t.Errorf("%T outside the odoh namespace: %q", obj, m.GetNamespace())
			}
		}
	}
	for _, role := range roles {
		t.Run(role, func(t *testing.T) {
			checkRole(t, whole, role)
			// Each half stands alone, for an operator who runs only it.
			half := index(t, decodeAll(t, dec, "kustomize build "+role, render(t, role)))
			if len(half.namespaces) != 0 {
				t.Error("a half creates the namespace; only the whole base does")
			}
			checkRole(t, half, role)
		})
	}
}

func checkRole(t *testing.T, r *rendered, role string) {
	t.Helper()
	name := "odoh-" + role
	prefix := "ODOH_" + strings.ToUpper(role) + "_"
	d := r.deployments[name]
	if d == nil {
		t.Fatalf("no Deployment %s", name)
	}
	pod := d.Spec.Template
	if sel, err := metaSelector(d.Spec.Selector.MatchLabels); err != nil || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("Deployment selector %v does not match its pods' labels %v", d.Spec.Selector.MatchLabels, pod.Labels)
	}
	podLabels := labels.Set(pod.Labels)
	spec := pod.Spec

	// Non-root, no token, RuntimeDefault seccomp, and the one sysctl that
	// binds 443 without a capability.
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext not non-root: %+v", psc)
	} else {
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("seccomp profile %+v, want RuntimeDefault", psc.SeccompProfile)
		}
		bindsHTTPS := false
		for _, s := range psc.Sysctls {
			if s.Name == "net.ipv4.ip_unprivileged_port_start" {
				v, err := strconv.Atoi(s.Value)
				bindsHTTPS = err == nil && v <= 443
			}
		}
		if !bindsHTTPS {
			t.Errorf("no sysctl net.ipv4.ip_unprivileged_port_start <= 443: the non-root process cannot bind 443 (%+v)", psc.Sysctls)
		}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pods mount a service account token they never use")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if want := "localhost/" + name + ":latest"; c.Image != want {
		t.Errorf("image %q, want %q (the kustomization's images entry)", c.Image, want)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
		len(sc.Capabilities.Add) != 0 || (sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("container securityContext %+v: want a read-only root, no privilege escalation, every capability dropped and none added", sc)
	}

	// Requests and limits of both resources, requests within limits.
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[res]
		lim, okLim := c.Resources.Limits[res]
		if !okReq || !okLim || req.IsZero() || req.Cmp(lim) > 0 {
			t.Errorf("%s: request %v, limit %v: want both, request <= limit", res, req.String(), lim.String())
		}
	}

	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env[prefix+"LISTEN"].Value != ":443" {
		t.Errorf("%sLISTEN = %q, want :443 (Alt-Svc advertises the port the pod listens on)", prefix, env[prefix+"LISTEN"].Value)
	}
	// The Go heap's soft limit sits below the memory limit, with room for
	// what is not heap (stacks, the runtime, the binary), so that the
	// collector works harder before the kernel kills the pod.
	if soft, err := strconv.Atoi(env[prefix+"MEMORY_LIMIT"].Value); err != nil || soft <= 0 {
		t.Errorf("%sMEMORY_LIMIT = %q, want a soft limit in MiB", prefix, env[prefix+"MEMORY_LIMIT"].Value)
	} else if hard := c.Resources.Limits.Memory().Value() >> 20; float64(soft) > 0.85*float64(hard) {
		t.Errorf("soft memory limit %d MiB is not below the container's %d MiB with room to spare", soft, hard)
	}
	for _, e := range c.EnvFrom {
		if e.ConfigMapRef == nil || r.configMaps[e.ConfigMapRef.Name] == nil {
			t.Errorf("envFrom %+v names no ConfigMap of the build", e)
		}
	}

	// Ports: HTTPS on TCP 443, HTTP/3 on UDP 443, and the admin listener
	// where the probes ask.
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	if p := ports["https"]; p.ContainerPort != 443 || p.Protocol != corev1.ProtocolTCP {
		t.Errorf("https port %+v, want 443/TCP", p)
	}
	if p := ports["h3"]; p.ContainerPort != 443 || p.Protocol != corev1.ProtocolUDP {
		t.Errorf("h3 port %+v, want 443/UDP", p)
	}
	_, adminPort, err := net.SplitHostPort(env[prefix+"ADMIN"].Value)
	if err != nil {
		t.Fatalf("%sADMIN = %q: %v", prefix, env[prefix+"ADMIN"].Value, err)
	}
	if p := ports["admin"]; strconv.Itoa(int(p.ContainerPort)) != adminPort || p.Protocol != corev1.ProtocolTCP {
		t.Errorf("admin port %+v, but %sADMIN listens on %s", p, prefix, adminPort)
	}
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz")
	checkProbe(t, "liveness", c.LivenessProbe, "/healthz")

	// Certificate and key from a mounted Secret.
	mounts := map[string]corev1.Volume{}
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == m.Name {
				if !m.ReadOnly {
					t.Errorf("volume %s mounted writable", m.Name)
				}
				mounts[m.MountPath] = v
			}
		}
	}
	mountOf := func(file string) corev1.Volume { return mounts[path.Dir(file)] }
	for _, f := range []string{"CERT", "KEY"} {
		if v := mountOf(env[prefix+f].Value); v.Secret == nil {
			t.Errorf("%s%s = %q is not in a mounted Secret", prefix, f, env[prefix+f].Value)
		}
	}

	switch role {
	case "target":
		// The seed: one Secret of the build, holding 32 bytes, mounted by
		// the one pod template that every replica (and every replica the
		// autoscaler adds) is made from.
		v := mountOf(env[prefix+"SEED_FILE"].Value)
		if v.Secret == nil {
			t.Fatalf("%sSEED_FILE = %q is not in a mounted Secret", prefix, env[prefix+"SEED_FILE"].Value)
		}
		s := r.secrets[v.Secret.SecretName]
		if s == nil {
			t.Fatalf("the seed Secret %q is not part of the build (secrets: %v)", v.Secret.SecretName, keys(r.secrets))
		}
		if got := s.Data[path.Base(env[prefix+"SEED_FILE"].Value)]; !bytes.Equal(got, testSeed) {
			t.Errorf("seed Secret holds %x under the seed file's name, want the operator's seed", got)
		}
		seedSecrets := 0
		for _, dep := range r.deployments {
			for _, vol := range dep.Spec.Template.Spec.Volumes {
				if vol.Secret != nil && r.secrets[vol.Secret.SecretName] == s {
					seedSecrets++
				}
			}
		}
		if seedSecrets != 1 {
			t.Errorf("the seed Secret is mounted by %d pod templates, want exactly the target's", seedSecrets)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Error("fewer than two target replicas")
		}
	case "proxy":
		v := mountOf(env[prefix+"ALLOW_FILE"].Value)
		if v.ConfigMap == nil || r.configMaps[v.ConfigMap.Name] == nil ||
			r.configMaps[v.ConfigMap.Name].Data[path.Base(env[prefix+"ALLOW_FILE"].Value)] == "" {
			t.Errorf("%sALLOW_FILE = %q is not a file of a ConfigMap of the build", prefix, env[prefix+"ALLOW_FILE"].Value)
		}
		if env[prefix+"ALLOW_OPEN"].Value != "" || env[prefix+"ALLOW_SPECIAL_ADDRS"].Value != "" {
			t.Error("the proxy is an open relay or reaches private addresses")
		}
	}

	// The Service: both protocols on 443, to the pods, never the admin port.
	svc := r.services[name]
	if svc == nil {
		t.Fatalf("no Service %s", name)
	}
	if sel, err := metaSelector(svc.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("Service selector %v does not select the pods", svc.Spec.Selector)
	}
	protos := map[corev1.Protocol]bool{}
	for _, p := range svc.Spec.Ports {
		cp, ok := ports[p.TargetPort.StrVal]
		if p.TargetPort.Type != intstr.String || !ok || cp.Protocol != p.Protocol {
			t.Errorf("Service port %+v does not name a container port of its protocol", p)
		}
		if strconv.Itoa(int(cp.ContainerPort)) == adminPort || p.Name == "admin" {
			t.Errorf("Service %s exposes the admin port", name)
		}
		if p.Port == 443 {
			protos[p.Protocol] = true
		}
	}
	if !protos[corev1.ProtocolTCP] || !protos[corev1.ProtocolUDP] {
		t.Errorf("Service %s: 443 on %v, want TCP and UDP (HTTP/3)", name, protos)
	}
	if role == "proxy" && svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Error("the proxy's Service loses client addresses (externalTrafficPolicy is not Local): per-client limits would see the nodes")
	}

	pdb := r.pdbs[name]
	if pdb == nil || pdb.Spec.Selector == nil || (pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil) {
		t.Errorf("PodDisruptionBudget %s missing or empty", name)
	} else if sel, err := metaSelector(pdb.Spec.Selector.MatchLabels); err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods", pdb.Spec.Selector.MatchLabels)
	}

	hpa := r.hpas[name]
	if hpa == nil {
		t.Fatalf("no HorizontalPodAutoscaler %s", name)
	}
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != name || ref.APIVersion != "apps/v1" {
		t.Errorf("autoscaler scales %+v", ref)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
		t.Errorf("autoscaler bounds %v..%d: want at least 2 and room to grow", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	cpu := false
	for _, m := range hpa.Spec.Metrics {
		cpu = cpu || (m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil)
	}
	if !cpu {
		t.Error("autoscaler does not scale on CPU utilisation (the requests it is relative to are measured)")
	}

	checkPolicy(t, r.policies[name], podLabels, adminPort)
}

func checkProbe(t *testing.T, what string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.StrVal != "admin" {
		t.Errorf("%s probe %+v: want GET %s on the admin port", what, p, path)
	}
}

// checkPolicy: the queries' ports are open to all, the admin port only to
// a restricted set of peers, and egress is limited too.
func checkPolicy(t *testing.T, np *networkingv1.NetworkPolicy, podLabels labels.Set, adminPort string) {
	t.Helper()
	if np == nil {
		t.Fatal("no NetworkPolicy")
	}
	if sel, err := metaSelector(np.Spec.PodSelector.MatchLabels); err != nil || len(np.Spec.PodSelector.MatchLabels) == 0 || !sel.Matches(podLabels) {
		t.Errorf("NetworkPolicy selects %v, not the pods", np.Spec.PodSelector.MatchLabels)
	}
	types := map[networkingv1.PolicyType]bool{}
	for _, pt := range np.Spec.PolicyTypes {
		types[pt] = true
	}
	if !types[networkingv1.PolicyTypeIngress] || !types[networkingv1.PolicyTypeEgress] || len(np.Spec.Egress) == 0 {
		t.Errorf("NetworkPolicy types %v: want Ingress and a limited Egress", np.Spec.PolicyTypes)
	}
	open := map[corev1.Protocol]bool{}
	adminRestricted := false
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil {
				t.Errorf("ingress rule open on every port: %+v", rule)
				continue
			}
			port := p.Port.String()
			if len(rule.From) == 0 {
				if port == adminPort {
					t.Errorf("admin port %s open to everyone", adminPort)
				}
				if port == "443" && p.Protocol != nil {
					open[*p.Protocol] = true
				}
			} else if port == adminPort {
				adminRestricted = true
			}
		}
		if len(rule.Ports) == 0 {
			t.Errorf("ingress rule without ports: %+v", rule)
		}
	}
	if !open[corev1.ProtocolTCP] || !open[corev1.ProtocolUDP] {
		t.Errorf("443 open for %v, want TCP and UDP", open)
	}
	if !adminRestricted {
		t.Error("no rule lets the monitoring peers reach the admin port")
	}
}

func metaSelector(m map[string]string) (labels.Selector, error) {
	if len(m) == 0 {
		return nil, errors.New("empty selector")
	}
	return labels.SelectorFromSet(m), nil
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
