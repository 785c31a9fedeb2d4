package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// mount: a container's mountPath and the folder that stands for it on this host.
type mount struct{ path, dir string }

// writeVolumes writes the Pod's Secret and ConfigMap volumes into dir/volumes/<name> (other
// volume kinds are empty folders) and returns the container's mounts, longest path first.
func (k *kubelet) writeVolumes(ctx context.Context, p *corev1.Pod, c corev1.Container, dir string) ([]mount, error) {
	vols := map[string]string{}
	for _, v := range p.Spec.Volumes {
		vd := filepath.Join(dir, "volumes", v.Name)
		if err := os.MkdirAll(vd, 0o755); err != nil {
			return nil, err
		}
		vols[v.Name] = vd
		var data map[string][]byte
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			s, err := k.cs.CoreV1().Secrets(p.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			data, items = s.Data, v.Secret.Items
		case v.ConfigMap != nil:
			cm, err := k.cs.CoreV1().ConfigMaps(p.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			data = map[string][]byte{}
			for key, val := range cm.Data {
				data[key] = []byte(val)
			}
			for key, val := range cm.BinaryData {
				data[key] = val
			}
			items = v.ConfigMap.Items
		default:
			continue
		}
		if len(items) == 0 {
			for key := range data {
				items = append(items, corev1.KeyToPath{Key: key, Path: key})
			}
		}
		for _, it := range items {
			f := filepath.Join(vd, it.Path)
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(f, data[it.Key], 0o600); err != nil {
				return nil, err
			}
		}
	}
	var mounts []mount
	for _, m := range c.VolumeMounts {
		if d, ok := vols[m.Name]; ok {
			mounts = append(mounts, mount{path: m.MountPath, dir: filepath.Join(d, m.SubPath)})
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].path) > len(mounts[j].path) })
	return mounts, nil
}

// rewritePath maps a path under a mountPath to the host folder that stands for it.
func rewritePath(v string, mounts []mount) string {
	for _, m := range mounts {
		base := strings.TrimSuffix(m.path, "/")
		if v == m.path || v == base {
			return m.dir
		}
		if rest, ok := strings.CutPrefix(v, base+"/"); ok {
			return filepath.Join(m.dir, rest)
		}
	}
	return v
}

// env is the container's environment as the kubelet would give it: literal values, the downward
// API's fields, Secret and ConfigMap keys; values under a mountPath point at the host folder.
func (k *kubelet) env(ctx context.Context, p *corev1.Pod, c corev1.Container, lp *pod, mounts []mount) ([]string, error) {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + lp.dir, "HOSTNAME=" + p.Name}
	for _, e := range c.Env {
		v := e.Value
		if s := e.ValueFrom; s != nil {
			switch {
			case s.FieldRef != nil:
				v = fieldRef(p, s.FieldRef.FieldPath, k.cfg.nodeIP, lp.ip.String())
			case s.SecretKeyRef != nil:
				sec, err := k.cs.CoreV1().Secrets(p.Namespace).Get(ctx, s.SecretKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				v = string(sec.Data[s.SecretKeyRef.Key])
			case s.ConfigMapKeyRef != nil:
				cm, err := k.cs.CoreV1().ConfigMaps(p.Namespace).Get(ctx, s.ConfigMapKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				v = cm.Data[s.ConfigMapKeyRef.Key]
			}
		}
		env = append(env, e.Name+"="+rewritePath(v, mounts))
	}
	return env, nil
}

func fieldRef(p *corev1.Pod, path, nodeIP, podIP string) string {
	switch {
	case path == "metadata.name":
		return p.Name
	case path == "metadata.namespace":
		return p.Namespace
	case path == "metadata.uid":
		return string(p.UID)
	case path == "spec.nodeName":
		return p.Spec.NodeName
	case path == "spec.serviceAccountName":
		return p.Spec.ServiceAccountName
	case path == "status.hostIP", path == "status.hostIPs":
		return nodeIP
	case path == "status.podIP", path == "status.podIPs":
		return podIP
	case strings.HasPrefix(path, "metadata.labels['"):
		return p.Labels[strings.TrimSuffix(strings.TrimPrefix(path, "metadata.labels['"), "']")]
	case strings.HasPrefix(path, "metadata.annotations['"):
		return p.Annotations[strings.TrimSuffix(strings.TrimPrefix(path, "metadata.annotations['"), "']")]
	}
	return ""
}
