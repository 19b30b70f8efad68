package kubernetes_test

// The manifests in this folder are decoded strictly into the Kubernetes API
// types, so a misspelled or misplaced field fails here rather than at
// `kubectl apply` time, and the invariants that tie the master, its Service
// and the workers together (names, ports, the secret, the pod IP) are
// checked so that the pieces cannot drift apart.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/health"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// What the manifests must agree on.
const (
	secretName      = "dstream-secret" // the Kubernetes Secret the README tells the user to create
	secretKey       = "secret"         // its key holding the shared secret
	masterName      = "dstream-master" // the master Deployment and its Service
	workerName      = "dstream-worker"
	clusterPortName = "cluster"
	healthPortName  = "health"
	// binary is where the image (../../Containerfile) puts the program, and
	// its ENTRYPOINT; image is what the manifests run.
	binary = "/usr/local/bin/dstream"
	image  = "ghcr.io/dstream/dstream:latest"
	// objectStoreSecret holds the object store's settings, as the AWS SDK
	// reads them from the environment.
	objectStoreSecret = "dstream-object-store"
)

// objectStoreEnv are the variables every container takes from
// objectStoreSecret; the endpoint is optional (AWS S3 needs none).
var objectStoreEnv = map[string]bool{"AWS_REGION": false, "AWS_ACCESS_KEY_ID": false, "AWS_SECRET_ACCESS_KEY": false, "AWS_ENDPOINT_URL": true}

// object is one decoded document and where it came from.
type object struct {
	file string // base name of the YAML file
	doc  int    // 1-based document number within the file
	obj  any    // *appsv1.Deployment or *corev1.Service
}

func (o object) String() string {
	switch v := o.obj.(type) {
	case *appsv1.Deployment:
		return fmt.Sprintf("%s (document %d): Deployment %q", o.file, o.doc, v.Name)
	case *corev1.Service:
		return fmt.Sprintf("%s (document %d): Service %q", o.file, o.doc, v.Name)
	}
	return fmt.Sprintf("%s (document %d)", o.file, o.doc)
}

// docSeparator is a YAML document separator line.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments splits a multi-document YAML file on `---` lines and drops
// documents that hold nothing but comments and blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		empty := true
		for _, line := range strings.Split(d, "\n") {
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// decodeStrict decodes one YAML document into the typed object its
// apiVersion and kind name. It fails on an unknown kind, on a field the type
// does not have, on a field spelled with the wrong case, on a duplicate key
// and on trailing data.
func decodeStrict(doc []byte) (any, error) {
	// YAMLToJSONStrict is YAMLToJSON that also refuses duplicate keys, which
	// YAMLToJSON would silently resolve to the last one.
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("YAML to JSON: %w", err)
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return nil, fmt.Errorf("reading apiVersion and kind: %w", err)
	}
	var newObj func() any
	switch gvk := tm.APIVersion + ", Kind=" + tm.Kind; gvk {
	case "apps/v1, Kind=Deployment":
		newObj = func() any { return new(appsv1.Deployment) }
	case "v1, Kind=Service":
		newObj = func() any { return new(corev1.Service) }
	default:
		return nil, fmt.Errorf("unknown kind: apiVersion %q kind %q (this test knows apps/v1 Deployment and v1 Service)", tm.APIVersion, tm.Kind)
	}

	// encoding/json matches field names case-insensitively, so `containerport`
	// would pass the decoder below; the API server's own strict decoder
	// (sigs.k8s.io/json) refuses it, and names the full path of each bad
	// field, so it runs too.
	var strict error
	if strictErrs, err := kjson.UnmarshalStrict(j, newObj()); err != nil {
		strict = err
	} else {
		strict = errors.Join(strictErrs...)
	}

	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		if strict != nil && strict.Error() != err.Error() {
			return nil, fmt.Errorf("decoding %s: %w (%v)", tm.Kind, err, strict)
		}
		return nil, fmt.Errorf("decoding %s: %w", tm.Kind, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decoding %s: trailing data after the object", tm.Kind)
	}
	if strict != nil {
		return nil, fmt.Errorf("decoding %s: %w", tm.Kind, strict)
	}
	return obj, nil
}

// loadManifests decodes every *.yaml file in this folder once for all the
// tests; each error names the file and the document.
var loadManifests = sync.OnceValues(func() ([]object, []error) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		return nil, []error{err}
	}
	if len(files) == 0 {
		return nil, []error{errors.New("no *.yaml manifests found in deploy/kubernetes")}
	}
	sort.Strings(files)
	var objs []object
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		docs := splitDocuments(data)
		if len(docs) == 0 {
			errs = append(errs, fmt.Errorf("%s: no YAML document", f))
		}
		for i, d := range docs {
			obj, err := decodeStrict(d)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (document %d): %w", f, i+1, err))
				continue
			}
			objs = append(objs, object{file: f, doc: i + 1, obj: obj})
		}
	}
	return objs, errs
})

// cluster is the decoded manifests, indexed by name.
type cluster struct {
	objs        []object
	deployments map[string]object
	services    map[string]object
}

func load(t *testing.T) cluster {
	t.Helper()
	objs, errs := loadManifests()
	if len(errs) > 0 {
		t.Fatalf("%d manifest document(s) do not decode strictly, first: %v (TestManifestsDecodeStrictly lists them all)", len(errs), errs[0])
	}
	c := cluster{objs: objs, deployments: map[string]object{}, services: map[string]object{}}
	for _, o := range c.objs {
		var m map[string]object
		var name string
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			m, name = c.deployments, v.Name
		case *corev1.Service:
			m, name = c.services, v.Name
		}
		if prev, dup := m[name]; dup {
			t.Errorf("%v: same kind and name as %v", o, prev)
		}
		m[name] = o
	}
	for _, want := range []struct {
		m    map[string]object
		kind string
		name string
	}{
		{c.deployments, "Deployment", masterName},
		{c.deployments, "Deployment", workerName},
		{c.services, "Service", masterName},
	} {
		if _, ok := want.m[want.name]; !ok {
			t.Errorf("no %s named %q in any manifest", want.kind, want.name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return c
}

func (c cluster) deployment(name string) (*appsv1.Deployment, object) {
	o := c.deployments[name]
	return o.obj.(*appsv1.Deployment), o
}

func (c cluster) service(name string) (*corev1.Service, object) {
	o := c.services[name]
	return o.obj.(*corev1.Service), o
}

// flagValue returns the value of the Go-style flag name (-name or --name,
// followed by the value or joined to it with =) in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// hostPort splits a HOST:PORT flag value.
func hostPort(v string) (string, int32, error) {
	h, p, err := net.SplitHostPort(v)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not a port number", p)
	}
	return h, int32(n), nil
}

func containerPort(c corev1.Container, name string) (corev1.ContainerPort, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs, errs := loadManifests()
	for _, err := range errs {
		t.Error(err)
	}
	for _, o := range objs {
		t.Logf("decoded %v", o)
	}
	if len(errs) == 0 {
		load(t) // every expected object is there, once
	}
}

// TestDecodeStrictRejects makes sure the strict decoding is strict: each
// broken variant of a valid document must be refused.
func TestDecodeStrictRejects(t *testing.T) {
	const valid = `apiVersion: v1
kind: Service
metadata:
  name: s
spec:
  selector:
    app: a
  ports:
    - name: cluster
      port: 7077
`
	if _, err := decodeStrict([]byte(valid)); err != nil {
		t.Fatalf("valid document refused: %v", err)
	}
	for _, tc := range []struct {
		name, old, new string
	}{
		{"misspelled field", "port: 7077", "prot: 7077"},
		{"wrong case", "port: 7077", "Port: 7077"},
		{"field at the wrong level", "  selector:", "  containers: []\n  selector:"},
		{"duplicate key", "  name: s\n", "  name: s\n  name: t\n"},
		{"wrong type", "port: 7077", "port: [7077]"},
		{"unknown kind", "kind: Service", "kind: Secret"},
		{"wrong apiVersion", "apiVersion: v1", "apiVersion: apps/v1"},
		{"not YAML", "spec:", "spec: : :"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(valid, tc.old, tc.new, 1)
			if doc == valid {
				t.Fatalf("test case does not change the document")
			}
			if _, err := decodeStrict([]byte(doc)); err == nil {
				t.Errorf("decodeStrict accepted:\n%s", doc)
			} else {
				t.Logf("refused as expected: %v", err)
			}
		})
	}
}

func TestSplitDocuments(t *testing.T) {
	in := "# header\n---\na: 1\n---  \n# only a comment\n\n---\nb: 2\n--- # not a separator line\n"
	got := splitDocuments([]byte(in))
	var s []string
	for _, d := range got {
		s = append(s, strings.TrimSpace(string(d)))
	}
	want := []string{"a: 1", "b: 2\n--- # not a separator line"}
	if !slices.Equal(s, want) {
		t.Errorf("splitDocuments = %q, want %q", s, want)
	}
}

func TestDeploymentSelectorsMatchTemplates(t *testing.T) {
	c := load(t)
	for name, o := range c.deployments {
		d := o.obj.(*appsv1.Deployment)
		t.Run(name, func(t *testing.T) {
			if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels)+len(d.Spec.Selector.MatchExpressions) == 0 {
				t.Fatalf("%v: spec.selector is empty", o)
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil {
				t.Fatalf("%v: spec.selector: %v", o, err)
			}
			if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("%v: spec.selector %q does not match spec.template.metadata.labels %v", o, sel, d.Spec.Template.Labels)
			}
			if len(d.Spec.Template.Spec.Containers) == 0 {
				t.Errorf("%v: spec.template.spec.containers is empty", o)
			}
		})
	}
	// The Deployments must not claim each other's pods.
	for a, oa := range c.deployments {
		for b, ob := range c.deployments {
			if a == b {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(oa.obj.(*appsv1.Deployment).Spec.Selector)
			if err != nil {
				continue // reported above
			}
			if sel.Matches(labels.Set(ob.obj.(*appsv1.Deployment).Spec.Template.Labels)) {
				t.Errorf("%v: spec.selector also matches the pods of %v", oa, ob)
			}
		}
	}
}

func TestReplicas(t *testing.T) {
	c := load(t)
	for _, tc := range []struct {
		name string
		ok   func(int32) bool
		want string
	}{
		{masterName, func(n int32) bool { return n == 2 }, "exactly 2 (an active master and a standby)"},
		{workerName, func(n int32) bool { return n >= 1 }, "at least 1"},
	} {
		d, o := c.deployment(tc.name)
		if d.Spec.Replicas == nil {
			t.Errorf("%v: spec.replicas is not set, want %s", o, tc.want)
		} else if !tc.ok(*d.Spec.Replicas) {
			t.Errorf("%v: spec.replicas = %d, want %s", o, *d.Spec.Replicas, tc.want)
		}
	}
}

func TestServiceSelectsMaster(t *testing.T) {
	c := load(t)
	svc, so := c.service(masterName)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP && svc.Spec.Type != "" {
		t.Errorf("%v: spec.type = %q, want ClusterIP", so, svc.Spec.Type)
	}
	if len(svc.Spec.Selector) == 0 {
		t.Fatalf("%v: spec.selector is empty", so)
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	for name, o := range c.deployments {
		d := o.obj.(*appsv1.Deployment)
		matches := sel.Matches(labels.Set(d.Spec.Template.Labels))
		switch {
		case name == masterName && !matches:
			t.Errorf("%v: spec.selector %v does not match the pod labels of %v (spec.template.metadata.labels %v)", so, svc.Spec.Selector, o, d.Spec.Template.Labels)
		case name != masterName && matches:
			t.Errorf("%v: spec.selector %v also matches the pods of %v", so, svc.Spec.Selector, o)
		}
	}
}

// TestServicePorts checks that the Service publishes the cluster port alone
// (not the UI, whose data is not for the whole cluster network, nor the
// probes), that it reaches a declared container port of the master, by
// name or number, and that it routes to ready masters only: the active one
// (a standby is not ready, and does not listen on the cluster port).
func TestServicePorts(t *testing.T) {
	c := load(t)
	svc, so := c.service(masterName)
	if len(svc.Spec.Ports) != 1 {
		t.Errorf("%v: spec.ports has %d ports, want the cluster port alone", so, len(svc.Spec.Ports))
	}
	if svc.Spec.PublishNotReadyAddresses {
		t.Errorf("%v: spec.publishNotReadyAddresses is true: workers would be sent to the standby master, which refuses them", so)
	}
	master, _ := c.deployment(masterName)
	mc := master.Spec.Template.Spec.Containers[0]
	for _, tc := range []struct {
		name string
		port int32
	}{
		{clusterPortName, 7077},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sp *corev1.ServicePort
			for i := range svc.Spec.Ports {
				if svc.Spec.Ports[i].Name == tc.name {
					sp = &svc.Spec.Ports[i]
				}
			}
			if sp == nil {
				t.Fatalf("%v: spec.ports has no port named %q", so, tc.name)
			}
			if sp.Port != tc.port {
				t.Errorf("%v: spec.ports[%s].port = %d, want %d", so, tc.name, sp.Port, tc.port)
			}
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port) // an unset targetPort means port
			}
			var cp corev1.ContainerPort
			var ok bool
			if target.Type == intstr.String {
				cp, ok = containerPort(mc, target.StrVal)
			} else {
				for _, p := range mc.Ports {
					if p.ContainerPort == target.IntVal {
						cp, ok = p, true
					}
				}
			}
			if !ok {
				t.Fatalf("%v: spec.ports[%s].targetPort %s is not a container port of %s container %q", so, tc.name, target.String(), masterName, mc.Name)
			}
			if cp.ContainerPort != tc.port {
				t.Errorf("%v: spec.ports[%s] reaches container port %d, want %d", so, tc.name, cp.ContainerPort, tc.port)
			}
		})
	}
}

// TestListenPortsAreContainerPorts checks that every port a container's
// arguments listen on is declared as a container port with the expected name.
func TestListenPortsAreContainerPorts(t *testing.T) {
	c := load(t)
	for _, tc := range []struct {
		deployment string
		flag       string
		port       int32
		portName   string
	}{
		{masterName, "cluster-listen", 7077, clusterPortName},
		{masterName, "health-listen", 8081, healthPortName},
		{masterName, "cluster-advertise", 7077, clusterPortName},
		{workerName, "listen", 7078, "peer"},
		{workerName, "advertise", 7078, "peer"},
		{workerName, "health-listen", 8081, healthPortName},
	} {
		t.Run(tc.deployment+"/--"+tc.flag, func(t *testing.T) {
			d, o := c.deployment(tc.deployment)
			ctr := d.Spec.Template.Spec.Containers[0]
			v, ok := flagValue(ctr.Args, tc.flag)
			if !ok {
				t.Fatalf("%v: containers[%s].args has no --%s", o, ctr.Name, tc.flag)
			}
			_, port, err := hostPort(v)
			if err != nil {
				t.Fatalf("%v: containers[%s].args --%s %q: %v", o, ctr.Name, tc.flag, v, err)
			}
			if port != tc.port {
				t.Errorf("%v: containers[%s].args --%s port = %d, want %d", o, ctr.Name, tc.flag, port, tc.port)
			}
			cp, ok := containerPort(ctr, tc.portName)
			if !ok {
				t.Fatalf("%v: containers[%s].ports has no port named %q for --%s %s", o, ctr.Name, tc.portName, tc.flag, v)
			}
			if cp.ContainerPort != port {
				t.Errorf("%v: containers[%s].ports[%s].containerPort = %d, but --%s listens on %d", o, ctr.Name, tc.portName, cp.ContainerPort, tc.flag, port)
			}
			if cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP {
				t.Errorf("%v: containers[%s].ports[%s].protocol = %s, want TCP", o, ctr.Name, tc.portName, cp.Protocol)
			}
		})
	}
	// Listen addresses must not be loopback: nothing outside the pod could
	// reach them.
	for _, tc := range []struct{ deployment, flag string }{
		{masterName, "cluster-listen"}, {masterName, "health-listen"}, {workerName, "listen"}, {workerName, "health-listen"},
	} {
		d, o := c.deployment(tc.deployment)
		ctr := d.Spec.Template.Spec.Containers[0]
		v, _ := flagValue(ctr.Args, tc.flag)
		if h, _, err := hostPort(v); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
			t.Errorf("%v: containers[%s].args --%s %q: listen on all interfaces (0.0.0.0), not %q", o, ctr.Name, tc.flag, v, h)
		}
	}
	// The UI has no authentication: it listens on the pod's loopback
	// (kubectl port-forward reaches it), and no container port names it.
	d, o := c.deployment(masterName)
	ctr := d.Spec.Template.Spec.Containers[0]
	v, ok := flagValue(ctr.Args, "ui-listen")
	if !ok {
		t.Errorf("%v: containers[%s].args has no --ui-listen; say 127.0.0.1:4040 (the default) for the reader", o, ctr.Name)
	} else if h, _, err := hostPort(v); err != nil || !net.ParseIP(h).IsLoopback() {
		t.Errorf("%v: containers[%s].args --ui-listen %q: want a loopback address; the UI is not for the cluster network", o, ctr.Name, v)
	}
	for _, p := range ctr.Ports {
		if p.Name == "ui" || p.ContainerPort == 4040 {
			t.Errorf("%v: containers[%s].ports declares the UI's port (%s %d), which listens on loopback only", o, ctr.Name, p.Name, p.ContainerPort)
		}
	}
}

func TestContainerCommands(t *testing.T) {
	c := load(t)
	var images []string
	for _, tc := range []struct {
		deployment string
		subcommand string
		flags      map[string]string // flag -> exact value
	}{
		{masterName, "demo", map[string]string{"master": "cluster", "duration": "0"}},
		{workerName, "worker", map[string]string{"slots": "2"}},
	} {
		d, o := c.deployment(tc.deployment)
		if n := len(d.Spec.Template.Spec.Containers); n != 1 {
			t.Errorf("%v: spec.template.spec.containers has %d containers, want 1", o, n)
			continue
		}
		ctr := d.Spec.Template.Spec.Containers[0]
		images = append(images, ctr.Image)
		if ctr.Image != image {
			t.Errorf("%v: containers[%s].image = %q, want %q (README: build and push it)", o, ctr.Name, ctr.Image, image)
		}
		if len(ctr.Command) != 1 || ctr.Command[0] != binary {
			t.Errorf("%v: containers[%s].command = %q, want [%q]", o, ctr.Name, ctr.Command, binary)
		}
		if len(ctr.Args) == 0 || ctr.Args[0] != tc.subcommand {
			t.Errorf("%v: containers[%s].args[0] = %q, want the subcommand %q", o, ctr.Name, ctr.Args, tc.subcommand)
		}
		for f, want := range tc.flags {
			if got, ok := flagValue(ctr.Args, f); !ok || got != want {
				t.Errorf("%v: containers[%s].args --%s = %q, want %q", o, ctr.Name, f, got, want)
			}
		}
	}
	if len(images) == 2 && images[0] != images[1] {
		t.Errorf("master and workers run different images: %q and %q; the cluster needs one binary", images[0], images[1])
	}
}

// TestProbes checks that every container's readiness and liveness probes are
// HTTP GETs of the paths package health serves, on the port its
// --health-listen serves them on (by name or number).
func TestProbes(t *testing.T) {
	c := load(t)
	for name, o := range c.deployments {
		ctr := o.obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
		v, ok := flagValue(ctr.Args, "health-listen")
		if !ok {
			t.Errorf("%v: containers[%s].args has no --health-listen", o, ctr.Name)
			continue
		}
		_, port, err := hostPort(v)
		if err != nil {
			t.Errorf("%v: containers[%s].args --health-listen %q: %v", o, ctr.Name, v, err)
			continue
		}
		for _, tc := range []struct {
			kind  string
			probe *corev1.Probe
			path  string
		}{
			{"readinessProbe", ctr.ReadinessProbe, health.ReadyPath},
			{"livenessProbe", ctr.LivenessProbe, health.LivePath},
		} {
			t.Run(name+"/"+tc.kind, func(t *testing.T) {
				if tc.probe == nil || tc.probe.HTTPGet == nil {
					t.Fatalf("%v: containers[%s].%s.httpGet is not set", o, ctr.Name, tc.kind)
				}
				g := tc.probe.HTTPGet
				if g.Path != tc.path {
					t.Errorf("%v: containers[%s].%s.httpGet.path = %q, want %q", o, ctr.Name, tc.kind, g.Path, tc.path)
				}
				if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
					t.Errorf("%v: containers[%s].%s.httpGet.scheme = %s, want HTTP", o, ctr.Name, tc.kind, g.Scheme)
				}
				target := g.Port.IntVal
				if g.Port.Type == intstr.String {
					cp, ok := containerPort(ctr, g.Port.StrVal)
					if !ok {
						t.Fatalf("%v: containers[%s].%s.httpGet.port %q is not a container port", o, ctr.Name, tc.kind, g.Port.StrVal)
					}
					target = cp.ContainerPort
				}
				if target != port {
					t.Errorf("%v: containers[%s].%s.httpGet.port %s is %d, but --health-listen serves on %d", o, ctr.Name, tc.kind, g.Port.String(), target, port)
				}
			})
		}
		// A liveness failure restarts the process: give it time to start.
		if p := ctr.LivenessProbe; p != nil && p.InitialDelaySeconds == 0 && ctr.StartupProbe == nil {
			t.Errorf("%v: containers[%s].livenessProbe has no initialDelaySeconds and there is no startupProbe", o, ctr.Name)
		}
	}
}

func TestWorkerMasterIsTheService(t *testing.T) {
	c := load(t)
	svc, so := c.service(masterName)
	d, o := c.deployment(workerName)
	ctr := d.Spec.Template.Spec.Containers[0]
	v, ok := flagValue(ctr.Args, "master")
	if !ok {
		t.Fatalf("%v: containers[%s].args has no --master", o, ctr.Name)
	}
	host, port, err := hostPort(v)
	if err != nil {
		t.Fatalf("%v: containers[%s].args --master %q: %v", o, ctr.Name, v, err)
	}
	// The Service name, or its fully qualified forms within the cluster.
	if host != svc.Name && !strings.HasPrefix(host, svc.Name+".") {
		t.Errorf("%v: containers[%s].args --master host %q is not the Service name %q of %v", o, ctr.Name, host, svc.Name, so)
	}
	var clusterPort int32
	for _, p := range svc.Spec.Ports {
		if p.Name == clusterPortName {
			clusterPort = p.Port
		}
	}
	if port != clusterPort {
		t.Errorf("%v: containers[%s].args --master port %d is not the %q port %d of %v", o, ctr.Name, port, clusterPortName, clusterPort, so)
	}
}

// TestAdvertisesPodIP checks that the addresses other pods dial are the pod's
// own IP: a pod's host name is not resolvable in the cluster's DNS.
func TestAdvertisesPodIP(t *testing.T) {
	c := load(t)
	for _, tc := range []struct{ deployment, flag string }{
		{workerName, "advertise"},
		{masterName, "cluster-advertise"},
	} {
		t.Run(tc.deployment+"/--"+tc.flag, func(t *testing.T) {
			d, o := c.deployment(tc.deployment)
			ctr := d.Spec.Template.Spec.Containers[0]
			v, ok := flagValue(ctr.Args, tc.flag)
			if !ok {
				t.Fatalf("%v: containers[%s].args has no --%s", o, ctr.Name, tc.flag)
			}
			if host, _, err := hostPort(v); err != nil || host != "$(POD_IP)" {
				t.Errorf("%v: containers[%s].args --%s = %q, want $(POD_IP):PORT", o, ctr.Name, tc.flag, v)
			}
			var env *corev1.EnvVar
			for i := range ctr.Env {
				if ctr.Env[i].Name == "POD_IP" {
					env = &ctr.Env[i]
				}
			}
			switch {
			case env == nil:
				t.Errorf("%v: containers[%s].env has no POD_IP, so $(POD_IP) in --%s is not expanded", o, ctr.Name, tc.flag)
			case env.Value != "":
				t.Errorf("%v: containers[%s].env[POD_IP].value = %q, want it from the downward API", o, ctr.Name, env.Value)
			case env.ValueFrom == nil || env.ValueFrom.FieldRef == nil:
				t.Errorf("%v: containers[%s].env[POD_IP].valueFrom.fieldRef is not set", o, ctr.Name)
			case env.ValueFrom.FieldRef.FieldPath != "status.podIP":
				t.Errorf("%v: containers[%s].env[POD_IP].valueFrom.fieldRef.fieldPath = %q, want status.podIP", o, ctr.Name, env.ValueFrom.FieldRef.FieldPath)
			}
		})
	}
	// Kubernetes expands $(VAR) in args only for a variable defined in env;
	// any other $(...) reaches the program literally.
	varRef := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, o := range c.deployments {
		for _, ctr := range o.obj.(*appsv1.Deployment).Spec.Template.Spec.Containers {
			for _, a := range append(slices.Clone(ctr.Command), ctr.Args...) {
				for _, m := range varRef.FindAllStringSubmatch(a, -1) {
					if !slices.ContainsFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == m[1] }) {
						t.Errorf("%v: containers[%s].command/args %q refers to $(%s), which is not in env", o, ctr.Name, a, m[1])
					}
				}
			}
		}
	}
}

func TestSecretMounted(t *testing.T) {
	c := load(t)
	for name, o := range c.deployments {
		d := o.obj.(*appsv1.Deployment)
		t.Run(name, func(t *testing.T) {
			spec := d.Spec.Template.Spec
			for _, ctr := range spec.Containers {
				file, ok := flagValue(ctr.Args, "secret-file")
				if !ok {
					t.Errorf("%v: containers[%s].args has no --secret-file", o, ctr.Name)
					continue
				}
				dir, base := path.Split(file)
				dir = path.Clean(dir)
				var mount *corev1.VolumeMount
				for i := range ctr.VolumeMounts {
					if path.Clean(ctr.VolumeMounts[i].MountPath) == dir {
						mount = &ctr.VolumeMounts[i]
					}
				}
				if mount == nil {
					t.Errorf("%v: containers[%s].volumeMounts has no mount at %s, the directory of --secret-file %s", o, ctr.Name, dir, file)
					continue
				}
				if !mount.ReadOnly {
					t.Errorf("%v: containers[%s].volumeMounts[%s].readOnly is not true", o, ctr.Name, mount.Name)
				}
				if mount.SubPath != "" {
					t.Errorf("%v: containers[%s].volumeMounts[%s].subPath = %q; a subPath mount of a Secret is never updated", o, ctr.Name, mount.Name, mount.SubPath)
				}
				i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
				if i < 0 {
					t.Errorf("%v: spec.template.spec.volumes has no volume %q mounted by containers[%s]", o, mount.Name, ctr.Name)
					continue
				}
				vol := spec.Volumes[i]
				if vol.Secret == nil {
					t.Errorf("%v: spec.template.spec.volumes[%s].secret is not set", o, vol.Name)
					continue
				}
				if vol.Secret.SecretName != secretName {
					t.Errorf("%v: spec.template.spec.volumes[%s].secret.secretName = %q, want %q", o, vol.Name, vol.Secret.SecretName, secretName)
				}
				if vol.Secret.Optional != nil && *vol.Secret.Optional {
					t.Errorf("%v: spec.template.spec.volumes[%s].secret.optional is true; the pod must not start without the secret", o, vol.Name)
				}
				// The file --secret-file names must be in the volume: either
				// every key (no items) or an item mapping the key to it.
				if len(vol.Secret.Items) == 0 {
					if base != secretKey {
						t.Errorf("%v: --secret-file %s names file %q, but volume %q holds the Secret's keys and the key is %q", o, file, base, vol.Name, secretKey)
					}
				} else if !slices.ContainsFunc(vol.Secret.Items, func(k corev1.KeyToPath) bool { return k.Key == secretKey && k.Path == base }) {
					t.Errorf("%v: spec.template.spec.volumes[%s].secret.items has no {key: %s, path: %s} for --secret-file %s", o, vol.Name, secretKey, base, file)
				}
			}
		})
	}
}

func TestResources(t *testing.T) {
	c := load(t)
	for name, o := range c.deployments {
		d := o.obj.(*appsv1.Deployment)
		t.Run(name, func(t *testing.T) {
			for _, ctr := range d.Spec.Template.Spec.Containers {
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, hasReq := ctr.Resources.Requests[r]
					lim, hasLim := ctr.Resources.Limits[r]
					if !hasReq || req.Sign() <= 0 {
						t.Errorf("%v: containers[%s].resources.requests.%s is not set", o, ctr.Name, r)
					}
					if !hasLim || lim.Sign() <= 0 {
						t.Errorf("%v: containers[%s].resources.limits.%s is not set", o, ctr.Name, r)
					}
					if hasReq && hasLim && req.Cmp(lim) > 0 {
						t.Errorf("%v: containers[%s].resources.requests.%s %s exceeds limits.%s %s", o, ctr.Name, r, req.String(), r, lim.String())
					}
				}
			}
		})
	}
}

// TestMemoryBudgetFitsLimit checks that the engine's memory budget (--memory,
// 1GiB when not given) stays below the container's memory limit: the budget
// counts the engine's data only, so a budget at or above the limit gets the
// pod OOM-killed.
func TestMemoryBudgetFitsLimit(t *testing.T) {
	c := load(t)
	for name, o := range c.deployments {
		d := o.obj.(*appsv1.Deployment)
		t.Run(name, func(t *testing.T) {
			for _, ctr := range d.Spec.Template.Spec.Containers {
				// The commands' own reading of --memory: "2G" is 2 GiB
				// there, 2e9 bytes in Kubernetes.
				budget := dstream.Bytes(dstream.DefaultMemory)
				v, ok := flagValue(ctr.Args, "memory")
				if !ok {
					v = budget.String()
				} else if err := budget.Set(v); err != nil {
					t.Errorf("%v: containers[%s].args --memory %q: %v", o, ctr.Name, v, err)
					continue
				}
				lim, ok := ctr.Resources.Limits[corev1.ResourceMemory]
				if !ok {
					continue // TestResources reports it
				}
				if int64(budget) >= lim.Value() {
					t.Errorf("%v: containers[%s] memory budget --memory %s is not below resources.limits.memory %s", o, ctr.Name, v, lim.String())
				}
			}
		})
	}
}

// TestObjectStoreEnv checks that every container (workers write state
// checkpoints too: they run the master's program) takes the object store's
// settings from the Secret, never from a value in the manifest, and that the
// master checkpoints to an s3:// location.
func TestObjectStoreEnv(t *testing.T) {
	c := load(t)
	for name, o := range c.deployments {
		ctr := o.obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
		t.Run(name, func(t *testing.T) {
			for v, optional := range objectStoreEnv {
				i := slices.IndexFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == v })
				if i < 0 {
					// envFrom the Secret would do as well.
					if !slices.ContainsFunc(ctr.EnvFrom, func(e corev1.EnvFromSource) bool {
						return e.SecretRef != nil && e.SecretRef.Name == objectStoreSecret && e.Prefix == ""
					}) {
						t.Errorf("%v: containers[%s] has no %s from the Secret %q", o, ctr.Name, v, objectStoreSecret)
					}
					continue
				}
				e := ctr.Env[i]
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("%v: containers[%s].env[%s] is not from a Secret (valueFrom.secretKeyRef)", o, ctr.Name, v)
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if ref.Name != objectStoreSecret || ref.Key != v {
					t.Errorf("%v: containers[%s].env[%s] = Secret %q key %q, want Secret %q key %q", o, ctr.Name, v, ref.Name, ref.Key, objectStoreSecret, v)
				}
				if got := ref.Optional != nil && *ref.Optional; got != optional {
					t.Errorf("%v: containers[%s].env[%s].valueFrom.secretKeyRef.optional = %v, want %v", o, ctr.Name, v, got, optional)
				}
			}
		})
	}
	d, o := c.deployment(masterName)
	ctr := d.Spec.Template.Spec.Containers[0]
	if v, ok := flagValue(ctr.Args, "checkpoint"); !ok || !strings.HasPrefix(v, "s3://") {
		t.Errorf("%v: containers[%s].args --checkpoint = %q, want s3://BUCKET/PREFIX", o, ctr.Name, v)
	}
	d, o = c.deployment(workerName)
	if v, ok := flagValue(d.Spec.Template.Spec.Containers[0].Args, "checkpoint"); ok {
		t.Errorf("%v: --checkpoint %q on the worker: a worker takes the master's arguments", o, v)
	}
}

// TestSecurity checks that every pod runs as the image's non-root user
// (numeric, so runAsNonRoot can check it), with a read-only root file
// system, no privilege escalation and no capabilities, and a writable /tmp
// from an emptyDir.
func TestSecurity(t *testing.T) {
	c := load(t)
	uid := containerfileUser(t)
	for name, o := range c.deployments {
		spec := o.obj.(*appsv1.Deployment).Spec.Template.Spec
		t.Run(name, func(t *testing.T) {
			ps := spec.SecurityContext
			if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
				t.Errorf("%v: spec.template.spec.securityContext.runAsNonRoot is not true", o)
			}
			if ps == nil || ps.RunAsUser == nil || *ps.RunAsUser != uid {
				t.Errorf("%v: spec.template.spec.securityContext.runAsUser is not %d, the Containerfile's USER", o, uid)
			}
			for _, ctr := range spec.Containers {
				sc := ctr.SecurityContext
				switch {
				case sc == nil:
					t.Errorf("%v: containers[%s].securityContext is not set", o, ctr.Name)
					continue
				case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
					t.Errorf("%v: containers[%s].securityContext.readOnlyRootFilesystem is not true", o, ctr.Name)
				case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
					t.Errorf("%v: containers[%s].securityContext.allowPrivilegeEscalation is not false", o, ctr.Name)
				case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
					t.Errorf("%v: containers[%s].securityContext.capabilities: want drop [ALL], add none", o, ctr.Name)
				case sc.Privileged != nil && *sc.Privileged:
					t.Errorf("%v: containers[%s] is privileged", o, ctr.Name)
				}
				i := slices.IndexFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return path.Clean(m.MountPath) == "/tmp" })
				if i < 0 {
					t.Errorf("%v: containers[%s] mounts nothing at /tmp: the root file system is read-only", o, ctr.Name)
					continue
				}
				m := ctr.VolumeMounts[i]
				j := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
				if m.ReadOnly || j < 0 || spec.Volumes[j].EmptyDir == nil {
					t.Errorf("%v: containers[%s] /tmp (volume %q) is not a writable emptyDir", o, ctr.Name, m.Name)
				}
			}
		})
	}
}
