package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// echoBasicPort is where the suite's echo-basic answers HTTP (and gRPC): its Pods declare no port.
const echoBasicPort = 3000

// pod is one Pod running on this node: its first container runs, the others are reported only.
type pod struct {
	uid      types.UID
	key      string // namespace/name
	ip       net.IP
	netns    string
	dir      string
	logs     *logFile
	cmd      *exec.Cmd
	started  metav1.Time
	ready    bool
	probeTCP int // 0: nothing to probe (faked or UDP-only)
}

func (k *kubelet) start(ctx context.Context, p *corev1.Pod) (_ *pod, err error) {
	k.mu.Lock()
	addr, err := k.ips.take()
	k.seq++
	seq := k.seq
	k.mu.Unlock()
	if err != nil {
		return nil, err
	}
	lp := &pod{
		uid: p.UID, key: p.Namespace + "/" + p.Name, ip: net.IP(addr.AsSlice()), started: metav1.Now(),
		netns: fmt.Sprintf("%s%d", k.cfg.prefix, seq), dir: filepath.Join(k.cfg.stateDir, string(p.UID)),
	}
	// A start that fails (a Secret volume that does not exist yet, say) gives everything back;
	// the next sync starts from scratch.
	defer func() {
		if err != nil {
			deleteNamespace(lp.netns)
			k.mu.Lock()
			k.ips.give(addr)
			k.mu.Unlock()
		}
	}()
	if err := os.MkdirAll(lp.dir, 0o755); err != nil {
		return nil, err
	}
	if lp.logs, err = newLogFile(filepath.Join(lp.dir, "container.log")); err != nil {
		return nil, err
	}
	if err := addNamespace(lp.netns, fmt.Sprintf("%sh%d", k.cfg.prefix, seq), addr.String()); err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	c := p.Spec.Containers[0]
	bin := k.binaryFor(c.Image)
	if bin != "" {
		mounts, err := k.writeVolumes(ctx, p, c, lp.dir)
		if err != nil {
			return nil, err
		}
		env, err := k.env(ctx, p, c, lp, mounts)
		if err != nil {
			return nil, err
		}
		args := append([]string{}, c.Command...)
		if len(args) > 0 {
			args = args[1:] // the image's entry point is the mapped binary
		}
		args = append(args, c.Args...)
		for i := range args {
			args[i] = rewritePath(args[i], mounts)
		}
		cmd := exec.Command("ip", append([]string{"netns", "exec", lp.netns, bin}, args...)...)
		cmd.Env, cmd.Dir = env, lp.dir
		cmd.Stdout, cmd.Stderr = lp.logs, lp.logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		go func() { _ = cmd.Wait() }()
		lp.cmd = cmd
		lp.probeTCP = probePort(c)
	}
	k.mu.Lock()
	k.pods[p.UID] = lp
	k.byName[lp.key] = lp
	k.mu.Unlock()
	log.Printf("started %s ip=%s netns=%s binary=%q", lp.key, lp.ip, lp.netns, bin)
	return lp, nil
}

func (k *kubelet) binaryFor(image string) string {
	for _, m := range k.cfg.images {
		if strings.Contains(image, m.substring) {
			return m.binary
		}
	}
	return ""
}

// stopLocked kills the Pod's process group and removes its namespace; k.mu is held.
func (k *kubelet) stopLocked(lp *pod) {
	if lp.cmd != nil && lp.cmd.Process != nil {
		_ = syscall.Kill(-lp.cmd.Process.Pid, syscall.SIGKILL)
		lp.cmd = nil
	}
	deleteNamespace(lp.netns)
	if a, ok := netipFrom(lp.ip); ok {
		k.ips.give(a)
	}
	delete(k.pods, lp.uid)
	delete(k.byName, lp.key)
	log.Printf("stopped %s", lp.key)
}

// probePort: the first TCP container port, else echo-basic's; 0 for UDP echo servers.
func probePort(c corev1.Container) int {
	for _, e := range c.Env {
		if e.Name == "UDP_ECHO_SERVER" {
			return 0
		}
	}
	for _, cp := range c.Ports {
		if cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP {
			return int(cp.ContainerPort)
		}
	}
	if strings.Contains(c.Image, "echo-basic") {
		return echoBasicPort
	}
	return 0
}

func (lp *pod) probe(_ *corev1.Pod) bool {
	if lp.probeTCP == 0 {
		return true
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(lp.ip.String(), strconv.Itoa(lp.probeTCP)), 500*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func (lp *pod) status(p *corev1.Pod, nodeIP string) corev1.PodStatus {
	ready := corev1.ConditionFalse
	if lp.ready {
		ready = corev1.ConditionTrue
	}
	t := lp.started
	started := true
	var containers []corev1.ContainerStatus
	for _, c := range p.Spec.Containers {
		containers = append(containers, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "loopback://" + c.Image,
			ContainerID: "loopback://" + string(p.UID) + "/" + c.Name,
			Ready:       lp.ready, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t}},
		})
	}
	ip := lp.ip.String()
	return corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: t},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: t},
			{Type: corev1.PodReady, Status: ready, LastTransitionTime: t},
			{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: t},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: t},
		},
		HostIP:            nodeIP,
		HostIPs:           []corev1.HostIP{{IP: nodeIP}},
		PodIP:             ip,
		PodIPs:            []corev1.PodIP{{IP: ip}},
		StartTime:         &t,
		ContainerStatuses: containers,
		QOSClass:          p.Status.QOSClass,
	}
}
