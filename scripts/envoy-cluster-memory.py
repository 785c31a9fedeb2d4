#!/usr/bin/env python3
"""Envoy's memory per upstream cluster (docs/benchmarks.md, "Envoy memory per cluster").

Starts the Envoy of $FLEETGATE_ENVOY twice on loopback, with no cluster and with N clusters
shaped like the hub's (named t/<tenant>/c/c1/default/svc-<i>/backend/8080, 3 endpoints each,
loaded from a file through CDS), and prints its RSS and tcmalloc's allocated bytes for both and
per cluster. The stats settings come from a bootstrap (default: examples/envoy.yaml, what
operators get); --plain uses only the fleetgate_tenant tag (the bootstraps before issue 15).

    set -a && source target/fleetgate-env && set +a
    python3 scripts/envoy-cluster-memory.py 5000
    python3 scripts/envoy-cluster-memory.py 5000 --plain

With --subsets K, the same N Services are K to a cluster instead: one cluster per K Services
(named t/<tenant>/c/c1/subsets-<j>), each endpoint labelled with its Service in the `envoy.lb`
metadata and the cluster split into one subset per Service (`lb_subset_config`), the shape a
route would select with `metadata_match`. Per-cluster figures are then per Service.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stats_settings(args):
    if args.plain:
        return {
            "stats_config": {
                "stats_tags": [
                    {"tag_name": "fleetgate_tenant", "regex": r"^cluster\.(t/([^/]+)/)"}
                ]
            }
        }
    with open(args.bootstrap) as f:
        b = yaml.safe_load(f)
    return {k: b[k] for k in ("deferred_stat_options", "stats_config") if k in b}


def endpoint(k, port, service=None):
    e = {
        "endpoint": {
            "address": {"socket_address": {"address": f"127.0.9.{k + 1}", "port_value": port}}
        }
    }
    if service is not None:
        e["metadata"] = {"filter_metadata": {"envoy.lb": {"svc": service}}}
    return e


def cluster(name, lb_endpoints, **more):
    """A STATIC cluster shaped like the hub's, with its endpoints inline."""
    c = {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "per_connection_buffer_limit_bytes": 32768,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb_endpoints}]},
    }
    c.update(more)
    return c


def clusters_of(n, args):
    """n Services: a cluster each, or with --subsets K to a cluster, one subset per Service."""
    if not args.subsets:
        return [
            cluster(
                f"t/tenant-{i % 100:03}/c/c1/default/svc-{i}/backend/8080",
                [endpoint(k, 18000) for k in range(args.endpoints)],
            )
            for i in range(n)
        ]
    return [
        cluster(
            f"t/tenant-{(j // args.subsets) % 100:03}/c/c1/subsets-{j}",
            [
                endpoint(k, 20000 + i % 40000, f"svc-{i}")
                for i in range(j, min(n, j + args.subsets))
                for k in range(args.endpoints)
            ],
            lb_subset_config={
                "fallback_policy": "NO_FALLBACK",
                "subset_selectors": [{"keys": ["svc"]}],
            },
        )
        for j in range(0, n, args.subsets)
    ]


def measure(n, args):
    d = tempfile.mkdtemp(prefix="envoy-cluster-memory-")
    clusters = clusters_of(n, args)
    cds = os.path.join(d, "cds.json")
    with open(cds, "w") as f:
        json.dump({"version_info": "1", "resources": clusters}, f)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    boot = {
        "node": {"id": "memory", "cluster": "fleetgate"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}},
        "dynamic_resources": {
            "cds_config": {"path_config_source": {"path": cds}, "resource_api_version": "V3"}
        },
    }
    boot.update(stats_settings(args))
    path = os.path.join(d, "bootstrap.json")
    with open(path, "w") as f:
        json.dump(boot, f)
    log = open(os.path.join(d, "envoy.log"), "w")
    envoy = subprocess.Popen(
        [
            os.environ["FLEETGATE_ENVOY"],
            "-c",
            path,
            "--concurrency",
            str(args.concurrency),
            "--disable-hot-restart",
            "--log-level",
            "warn",
        ],
        stderr=log,
    )

    def get(p):
        url = f"http://127.0.0.1:{port}{p}"
        return urllib.request.urlopen(url, timeout=120).read().decode()

    try:
        started = time.time()
        while True:
            if envoy.poll() is not None:
                sys.exit(f"Envoy exited; see {log.name}")
            try:
                if get("/stats?filter=cluster_manager.active_clusters").strip().endswith(
                    f": {len(clusters)}"
                ):
                    break
            except OSError:
                pass
            if time.time() - started > 600:
                sys.exit("Envoy did not load the clusters in 10 minutes")
            time.sleep(0.5)
        loaded = time.time() - started
        time.sleep(3)
        with open(f"/proc/{envoy.pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) * 1024
        allocated = int(json.loads(get("/memory"))["allocated"])
        one = len(get("/stats?filter=/svc-0/backend/8080%5C.").splitlines()) if n else 0
        return rss, allocated, one, loaded
    finally:
        envoy.kill()
        envoy.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clusters", type=int)
    p.add_argument("--bootstrap", default=os.path.join(ROOT, "examples/envoy.yaml"))
    p.add_argument("--plain", action="store_true", help="only the fleetgate_tenant tag")
    p.add_argument("--endpoints", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--subsets", type=int, default=0, help="Services per cluster, as subsets")
    args = p.parse_args()
    rss0, alloc0, _, _ = measure(0, args)
    rss, alloc, one, loaded = measure(args.clusters, args)
    mib = 1024 * 1024
    print(
        f"ENVOY_CLUSTER_MEMORY clusters={args.clusters} settings={'plain' if args.plain else os.path.relpath(args.bootstrap, ROOT)} "
        f"concurrency={args.concurrency} endpoints={args.endpoints} subsets={args.subsets} "
        f"rss={rss / mib:.1f}MiB (empty {rss0 / mib:.1f}MiB) allocated={alloc / mib:.1f}MiB "
        f"(empty {alloc0 / mib:.1f}MiB) per_cluster_rss={(rss - rss0) / args.clusters / 1024:.1f}KiB "
        f"per_cluster_allocated={(alloc - alloc0) / args.clusters / 1024:.1f}KiB "
        f"stats_per_cluster={one} loaded_in={loaded:.1f}s load1={os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
