"""`loadwise k8s follow|fetch RELEASE`: a run on Kubernetes (the Helm chart's release), seen from outside."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from loadwise import readers as types
from loadwise.engine.options import RUNS_DIR
from loadwise.errors import EXIT_FAILED, EXIT_OK


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """The same two options wherever loadwise talks to a cluster (k8s follow/fetch, advise hpa)."""
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one; $KUBECONFIG or ~/.kube/config, "
                        "or the in-cluster account)")  # fmt: skip


def register(sub: Any) -> None:
    k8s = sub.add_parser(
        "k8s", help="follow a run on Kubernetes and fetch its run directory (the Helm chart's release)",
        description="With the kubeconfig (or the in-cluster account): `follow RELEASE` prints the master's progress "
        "(users, req/s, p95 from its log) until the run ends and reports a failed or evicted master; `fetch RELEASE` "
        "copies the held run directory out of the master pod (tar over exec, as kubectl cp does) into --out, "
        "then lets the master exit.",
        epilog="example:\n  helm install shop-load deploy/helm/loadwise -f deploy/helm/loadwise/values-staging.yaml\n"
        "  loadwise k8s follow shop-load && loadwise k8s fetch shop-load --out runs/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    k8s.add_argument("action", choices=["follow", "fetch"], help="follow the run, or fetch its run directory")
    k8s.add_argument("release", metavar="RELEASE", help="the Helm release name")
    add_cluster_options(k8s)
    k8s.add_argument("--out", type=Path, default=Path(RUNS_DIR.default), help=f"with fetch: where the run directory goes (default {RUNS_DIR.shown})")
    k8s.add_argument("--timeout", type=types.duration, default=types.duration("2h"), help="give up following after this long (default 2h)")
    k8s.set_defaults(handler=cmd_k8s)


def cmd_k8s(args: argparse.Namespace) -> int:
    from loadwise.analysis.rundir import STATUS_COMPLETED
    from loadwise.k8s import follow as k8s

    def show(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    cluster = k8s.Cluster(args.namespace, args.context)
    if args.action == "follow":
        done = k8s.follow(cluster, args.release, args.timeout, show)
        return EXIT_OK if done is None or done.status == STATUS_COMPLETED else EXIT_FAILED
    path = k8s.fetch(cluster, args.release, args.out, show)
    print(path)
    return EXIT_OK
