package main

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

type kubelet struct {
	cfg config
	cs  kubernetes.Interface

	mu     sync.Mutex
	pods   map[types.UID]*pod
	byName map[string]*pod // namespace/name
	ips    *ipPool
	seq    int
}

func run(ctx context.Context, cfg config) error {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.stateDir, 0o755); err != nil {
		return err
	}
	k := &kubelet{cfg: cfg, cs: cs, pods: map[types.UID]*pod{}, byName: map[string]*pod{}, ips: newIPPool(cfg.podCIDR)}
	removeNamespaces(cfg.prefix)
	if err := k.registerNode(ctx); err != nil {
		return fmt.Errorf("registering node %s: %w", cfg.nodeName, err)
	}
	go k.heartbeat(ctx)
	srv, err := k.logServer()
	if err != nil {
		return err
	}
	defer srv.Close()

	factory := informers.NewSharedInformerFactory(cs, 0)
	podInformer := factory.Core().V1().Pods()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	lister := podInformer.Lister()
	for range 4 {
		go func() {
			for {
				key, shutdown := queue.Get()
				if shutdown {
					return
				}
				if err := k.sync(ctx, lister, key); err != nil {
					if err != errNotReady {
						log.Printf("sync %s: %v", key, err)
					}
					queue.AddRateLimited(key)
				} else {
					queue.Forget(key)
				}
				queue.Done(key)
			}
		}()
	}
	log.Printf("loopkubelet: node %s ready, pods from %s", cfg.nodeName, cfg.podCIDR)
	<-ctx.Done()
	queue.ShutDown()
	k.mu.Lock()
	for _, p := range k.pods {
		k.stopLocked(p)
	}
	k.mu.Unlock()
	removeNamespaces(cfg.prefix)
	return nil
}

// ---- node ------------------------------------------------------------------------------------

func (k *kubelet) nodeStatus() corev1.NodeStatus {
	now := metav1.Now()
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	return corev1.NodeStatus{
		Capacity:    res,
		Allocatable: res,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "loopkubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: k.cfg.nodeIP},
			{Type: corev1.NodeHostName, Address: k.cfg.nodeName},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(k.cfg.logsPort)}},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion: "v1.34.4-loopkubelet", OperatingSystem: "linux", Architecture: "amd64",
			ContainerRuntimeVersion: "loopback://0",
		},
	}
}

func (k *kubelet) registerNode(ctx context.Context) error {
	nodes := k.cs.CoreV1().Nodes()
	n, err := nodes.Get(ctx, k.cfg.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cidr := k.cfg.podCIDR.String()
		n, err = nodes.Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.nodeName, Labels: map[string]string{
				"kubernetes.io/hostname": k.cfg.nodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
			}},
			Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
		}, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	n.Status = k.nodeStatus()
	_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

func (k *kubelet) heartbeat(ctx context.Context) {
	t := time.NewTicker(20 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.registerNode(ctx); err != nil {
				log.Printf("node heartbeat: %v", err)
			}
		}
	}
}

// ---- pods ------------------------------------------------------------------------------------

var errNotReady = fmt.Errorf("not ready yet")

// sync brings one Pod to its desired state; the work queue never runs two syncs of one key at once.
func (k *kubelet) sync(ctx context.Context, lister corelisters.PodLister, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	p, err := lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		k.forget(ns + "/" + name)
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case p.Spec.NodeName == "" && p.DeletionTimestamp == nil:
		return k.bind(ctx, p) // play the scheduler
	case p.Spec.NodeName != k.cfg.nodeName:
		return nil
	case p.DeletionTimestamp != nil:
		return k.terminate(ctx, p)
	}
	k.mu.Lock()
	lp := k.pods[p.UID]
	k.mu.Unlock()
	if lp == nil {
		if lp, err = k.start(ctx, p); err != nil {
			return fmt.Errorf("starting: %w", err)
		}
	}
	if !lp.ready {
		lp.ready = lp.probe(p)
	}
	want := lp.status(p, k.cfg.nodeIP)
	if !statusEqual(p.Status, want) {
		cp := p.DeepCopy()
		cp.Status = want
		if _, err := k.cs.CoreV1().Pods(ns).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	if !lp.ready {
		return errNotReady
	}
	return nil
}

func (k *kubelet) bind(ctx context.Context, p *corev1.Pod) error {
	err := k.cs.CoreV1().Pods(p.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: k.cfg.nodeName},
	}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// terminate stops a deleted Pod's process and removes the Pod at once (no grace period).
func (k *kubelet) terminate(ctx context.Context, p *corev1.Pod) error {
	k.mu.Lock()
	if lp := k.pods[p.UID]; lp != nil {
		k.stopLocked(lp)
	}
	k.mu.Unlock()
	zero := int64(0)
	err := k.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func (k *kubelet) forget(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if lp := k.byName[key]; lp != nil {
		k.stopLocked(lp)
	}
}

func statusEqual(a, b corev1.PodStatus) bool {
	if a.Phase != b.Phase || a.PodIP != b.PodIP || len(a.Conditions) != len(b.Conditions) ||
		len(a.ContainerStatuses) != len(b.ContainerStatuses) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i].Type != b.Conditions[i].Type || a.Conditions[i].Status != b.Conditions[i].Status {
			return false
		}
	}
	for i := range a.ContainerStatuses {
		if a.ContainerStatuses[i].Ready != b.ContainerStatuses[i].Ready {
			return false
		}
	}
	return true
}

// ---- addresses -------------------------------------------------------------------------------

// ipPool hands out pod addresses from a prefix, skipping the network address and the first host.
type ipPool struct {
	prefix netip.Prefix
	used   map[netip.Addr]bool
}

func newIPPool(p netip.Prefix) *ipPool { return &ipPool{prefix: p, used: map[netip.Addr]bool{}} }

func (p *ipPool) take() (netip.Addr, error) {
	for a := p.prefix.Addr().Next().Next(); p.prefix.Contains(a); a = a.Next() {
		if !p.used[a] {
			p.used[a] = true
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("pod CIDR %s exhausted", p.prefix)
}

func (p *ipPool) give(a netip.Addr) { delete(p.used, a) }
