package bed

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

func (b *Bed) addr(port int) string { return b.cfg.Address + ":" + strconv.Itoa(port) }

func (b *Bed) startAPIServer(ctx context.Context) error {
	etcdURL := "http://" + b.addr(portEtcd)
	peerURL := "http://" + b.addr(portEtcdPeer)
	etcd, err := b.procs.start("etcd", nil, b.cfg.Etcd, "--data-dir", b.path("etcd"), "--name", "conformance",
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "conformance="+peerURL)
	if err != nil {
		return err
	}
	pki := func(f string) string { return b.path("pki", f) }
	kas, err := b.procs.start("kube-apiserver", nil, b.cfg.KubeAPIServer,
		"--etcd-servers="+etcdURL, "--cert-dir="+pki("kas"),
		"--tls-cert-file="+pki("apiserver.crt"), "--tls-private-key-file="+pki("apiserver.key"),
		"--client-ca-file="+pki("ca.crt"),
		"--secure-port="+strconv.Itoa(portAPIServer), "--bind-address="+b.cfg.Address, "--advertise-address="+b.cfg.Address,
		"--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--service-account-issuer="+b.url(portAPIServer), "--service-account-key-file="+pki("sa.pub"),
		"--service-account-signing-key-file="+pki("sa.key"),
		"--allow-privileged=true", "--enable-priority-and-fairness=false", "--endpoint-reconciler-type=none",
		// pods/log goes to the loopkubelet's log server on the Node's InternalIP.
		"--kubelet-preferred-address-types=InternalIP", "--v=1")
	if err != nil {
		return err
	}
	client, err := b.adminHTTP()
	if err != nil {
		return err
	}
	return b.eventually(ctx, 120*time.Second, func() error {
		for _, p := range []*proc{etcd, kas} {
			if err := b.procs.alive(p); err != nil {
				return permanent{err}
			}
		}
		resp, err := client.Get(b.url(portAPIServer) + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, body)
		}
		return nil
	})
}

func (b *Bed) adminHTTP() (*http.Client, error) {
	caPEM, err := os.ReadFile(b.path("pki", "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(b.path("pki", "admin.crt"), b.path("pki", "admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}, nil
}

// startNode starts the controllers the suite's Deployments need and the loopkubelet.
func (b *Bed) startNode(context.Context) error {
	if _, err := b.procs.start("kube-controller-manager", nil, b.cfg.KubeControllerManager,
		"--kubeconfig="+b.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--controllers=deployment-controller,replicaset-controller,endpointslice-controller,endpointslice-mirroring-controller,namespace-controller,garbage-collector-controller",
		"--use-service-account-credentials=false", "--v=1"); err != nil {
		return err
	}
	_, err := b.procs.start("loopkubelet", nil, b.cfg.Loopkubelet,
		"--kubeconfig="+b.Kubeconfig, "--node-ip="+b.cfg.Address, "--port="+strconv.Itoa(portKubelet),
		"--pod-cidr="+b.cfg.PodCIDR, "--state-dir="+b.path("pods"),
		"--image=gateway-api/echo-basic="+b.cfg.EchoBasic)
	return err
}

func (b *Bed) dynamic() (dynamic.Interface, *restmapper.DeferredDiscoveryRESTMapper, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", b.Kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	return dc, restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)), nil
}

// apply server-side-applies every document of a YAML stream.
func (b *Bed) apply(ctx context.Context, manifest []byte) error {
	dc, mapper, err := b.dynamic()
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		data, err := obj.MarshalJSON()
		if err != nil {
			return err
		}
		ri := dc.Resource(m.Resource)
		var r dynamic.ResourceInterface = ri
		if m.Scope.Name() == "namespace" {
			r = ri.Namespace(obj.GetNamespace())
		}
		force := true
		if _, err := r.Patch(ctx, obj.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: "fleetgate-conformance-bed", Force: &force}); err != nil {
			return fmt.Errorf("applying %s %s: %w", gvk.Kind, obj.GetName(), err)
		}
	}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// applyCRDs applies the Gateway API CRDs (and their admission policy), waits until they are
// established, then creates fleetgate's GatewayClass and the agent's namespace.
func (b *Bed) applyCRDs(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(b.cfg.CRDs, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRDs in %s", b.cfg.CRDs)
	}
	for _, f := range files {
		y, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := b.apply(ctx, y); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
	}
	dc, _, err := b.dynamic()
	if err != nil {
		return err
	}
	if err := b.eventually(ctx, 60*time.Second, func() error {
		list, err := dc.Resource(crdGVR).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, crd := range list.Items {
			if !hasCondition(crd.Object, "Established", "True") {
				return fmt.Errorf("CRD %s not established", crd.GetName())
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return b.apply(ctx, []byte(fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: %s}
spec: {controllerName: fleetgate.dev/hub}
---
apiVersion: v1
kind: Namespace
metadata: {name: fleetgate-system}
`, b.cfg.GatewayClass)))
}

// hasCondition: obj.status.conditions has type t with status s.
func hasCondition(obj map[string]any, t, s string) bool {
	conds, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == t && m["status"] == s {
			return true
		}
	}
	return false
}

// eventually retries f every 250 ms until it returns nil, a permanent error, or timeout passes.
func (b *Bed) eventually(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
