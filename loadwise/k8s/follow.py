"""`loadwise k8s follow|fetch RELEASE`: a run on Kubernetes, seen from outside.

The Helm chart (deploy/helm/loadwise) starts the master as a Job labelled with the
release; `follow` prints the master's progress from its log and watches the Job until
the run ends; `fetch` copies the run directory out of the held master pod the way
`kubectl cp` does (tar over the exec API), then tells the master it may exit. Both use
the `kubernetes` client with the kubeconfig (or the in-cluster service account).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from loadwise.k8s.client import K8sError, MasterFailed, connect
from loadwise.run.handoff import DONE_FILE, FETCHED_FILE, Done
from loadwise.engine.stream import Status

RUNS_DIR = "/runs"  # the chart's volume for run directories
LOG_RESUME_OVERLAP_S = 5
CONTAINER = "master"
RBAC_NEEDED = "list/watch on jobs and pods, get on pods/log and create on pods/exec"
FAILED_WAITING_REASONS = {"ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff", "CreateContainerConfigError", "InvalidImageName"}


class CommandFailed(K8sError):
    """A command run in the pod exited non-zero."""


@dataclass
class Master:
    namespace: str
    job: str
    pod: str


class Cluster:
    """The few API calls loadwise needs, with Kubernetes errors turned into one-line K8sErrors."""

    def __init__(self, namespace: str | None = None, context: str | None = None):
        from kubernetes import client

        self.connection = connect(namespace, context)
        self.namespace, self.host = self.connection.namespace, self.connection.host
        self.core = client.CoreV1Api(self.connection.api)
        self.batch = client.BatchV1Api(self.connection.api)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.connection.call(what, fn, *args, needs=RBAC_NEEDED, **kwargs)

    def find_master(self, release: str) -> Master:
        selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=master"
        jobs = self.call("listing Jobs", self.batch.list_namespaced_job, self.namespace, label_selector=selector).items
        if not jobs:
            raise K8sError(f"no loadwise master Job for release {release!r} in namespace {self.namespace!r} "
                           "(installed with the chart in deploy/helm/loadwise? try --namespace)")  # fmt: skip
        job = max(jobs, key=lambda j: j.metadata.creation_timestamp or 0)
        pods = self.call("listing pods", self.core.list_namespaced_pod, self.namespace,
                         label_selector=f"job-name={job.metadata.name}").items  # fmt: skip
        if not pods:
            raise K8sError(f"Job {job.metadata.name} has no pod (yet): {_job_state(job)[1]}")
        pod = max(pods, key=lambda p: p.metadata.creation_timestamp or 0)
        return Master(self.namespace, job.metadata.name, pod.metadata.name)

    def pod(self, master: Master) -> Any:
        return self.call(f"reading pod {master.pod}", self.core.read_namespaced_pod, master.pod, master.namespace)

    def exec(self, master: Master, command: list[str], timeout_s: float = 300.0) -> bytes:
        """Run `command` in the master container; its stdout, or K8sError with its stderr."""
        from kubernetes.stream import stream

        ws = self.call(f"exec in pod {master.pod}", stream, self.core.connect_get_namespaced_pod_exec, master.pod,
                       master.namespace, container=CONTAINER, command=command, stdin=False, stdout=True, stderr=True,
                       tty=False, _preload_content=False, binary=True)  # fmt: skip
        out, err, status = bytearray(), bytearray(), b""
        deadline = time.monotonic() + timeout_s
        try:
            while ws.is_open() and time.monotonic() < deadline:
                ws.update(timeout=1)
                out += ws.read_channel(1)
                err += ws.read_channel(2)
                status += ws.read_channel(3)
            out += ws.read_channel(1)
            err += ws.read_channel(2)
            status += ws.read_channel(3)
            timed_out = ws.is_open()
        finally:
            ws.close()
        if timed_out:
            raise K8sError(f"`{' '.join(command)}` in pod {master.pod} did not finish within {timeout_s:g}s")
        code = _exit_code(status)
        if code != 0:
            detail = err.decode("utf-8", "replace").strip() or f"exit code {code}"
            raise CommandFailed(f"`{' '.join(command)}` in pod {master.pod} failed: {detail.splitlines()[-1]}")
        return bytes(out)

    def watch_job(self, master: Master, timeout_s: float) -> tuple[str, str]:
        """Watch the Job until it completes or fails: (state, reason); state 'running' on timeout."""
        from kubernetes import watch

        job = self.call(f"reading Job {master.job}", self.batch.read_namespaced_job, master.job, master.namespace)
        state = _job_state(job)
        deadline = time.monotonic() + timeout_s
        while state[0] == "running" and time.monotonic() < deadline:
            stream = watch.Watch().stream(self.batch.list_namespaced_job, master.namespace,
                                          field_selector=f"metadata.name={master.job}",
                                          resource_version=job.metadata.resource_version,
                                          timeout_seconds=max(int(deadline - time.monotonic()), 1))  # fmt: skip
            for event in _guarded(self, master, stream):
                if event["type"] == "DELETED":
                    return "failed", f"Job {master.job} was deleted"
                job = event["object"]
                state = _job_state(job)
                if state[0] != "running":
                    break
        return state


def _guarded(cluster: Cluster, master: Master, stream: Any) -> Any:
    """The watch's events, with API errors raised as K8sError."""
    iterator = iter(stream)
    while True:
        event = cluster.call(f"watching Job {master.job}", next, iterator, None)
        if event is None:
            return
        yield event


def _exit_code(status: bytes) -> int:
    """The exec status (channel 3): 0 on Success, the process's exit code otherwise."""
    if not status.strip():
        return 0
    raw = json.loads(status)
    if raw.get("status") == "Success":
        return 0
    for cause in (raw.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", 1))
    raise K8sError(f"exec failed: {raw.get('message', raw)}")


def _job_state(job: Any) -> tuple[str, str]:
    for condition in (job.status.conditions or []) if job.status else []:
        if condition.status == "True" and condition.type in ("Complete", "Failed"):
            state = "completed" if condition.type == "Complete" else "failed"
            return state, f"{condition.reason or condition.type}: {condition.message or ''}".rstrip(": ")
    return "running", "the master is running"


def pod_problem(pod: Any) -> str | None:
    """Why the master pod cannot (or can no longer) run the test; None while it is fine."""
    status = pod.status
    if status.reason == "Evicted" or status.phase == "Failed":
        return f"master pod {pod.metadata.name} {'was evicted' if status.reason == 'Evicted' else 'failed'}: " + (
            status.message or _terminated(status) or status.reason or "no reason given")
    for container in status.container_statuses or []:
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason in FAILED_WAITING_REASONS:
            return f"master pod {pod.metadata.name} cannot start: {waiting.reason}: {waiting.message or ''}".rstrip(": ")
    return None


def _terminated(status: Any) -> str:
    for container in status.container_statuses or []:
        done = container.state.terminated if container.state else None
        if done is not None:
            return f"container exited with code {done.exit_code} ({done.reason})"
    return ""


def follow(cluster: Cluster, release: str, timeout_s: float, show: Callable[[str], None]) -> Done | None:
    """Print the master's progress until the run ends; the run's done record, or None if the Job
    ended without one. Raises K8sError for a failed or evicted master."""
    master = cluster.find_master(release)
    show(f"following Job {master.job} (pod {master.pod}) in namespace {master.namespace}")
    deadline = time.monotonic() + timeout_s
    pod = cluster.pod(master)
    while pod.status.phase == "Pending":
        if problem := pod_problem(pod):
            raise MasterFailed(problem)
        if time.monotonic() > deadline:
            raise K8sError(f"master pod {master.pod} still Pending after {timeout_s:g}s")
        show(f"waiting for pod {master.pod} ({_waiting_reason(pod)})")
        time.sleep(2)
        pod = cluster.pod(master)
    if problem := pod_problem(pod):
        raise MasterFailed(problem)
    since: int | None = None
    while pod.status.phase == "Running" and time.monotonic() < deadline:
        if (done := _follow_log(cluster, master, since, show)) is not None:
            show(f"run {done.run} finished: {done.status}; it is held in the pod for `loadwise k8s fetch {release}`")
            return done
        # The log ended with the pod still running: the API server cut a long stream. Pick up
        # where it stopped (a few seconds of overlap at most re-print a progress line).
        since = LOG_RESUME_OVERLAP_S
        time.sleep(1)
        pod = cluster.pod(master)
    state, reason = cluster.watch_job(master, max(deadline - time.monotonic(), 1))
    problem = pod_problem(cluster.pod(master))
    if state == "failed":
        raise MasterFailed(f"master Job {master.job} failed: {reason}" + (f"; {problem}" if problem else ""))
    if problem:
        raise MasterFailed(problem)
    if state == "running":
        raise K8sError(f"master Job {master.job} still running after {timeout_s:g}s")
    show(f"master Job {master.job} completed")
    return None


def _follow_log(cluster: Cluster, master: Master, since_s: int | None, show: Callable[[str], None]) -> Done | None:
    """Show progress lines from the master's log until it ends; the done record if it came."""
    extra = {"since_seconds": since_s} if since_s else {}
    response = cluster.call(f"reading the log of {master.pod}", cluster.core.read_namespaced_pod_log, master.pod,
                            master.namespace, container=CONTAINER, follow=True, _preload_content=False, **extra)  # fmt: skip
    for line in _lines(response):
        if (status := Status.from_rendered(line)) is not None:
            show(status.render())
        elif (done := Done.from_text(line)) is not None:
            return done
    return None


def _waiting_reason(pod: Any) -> str:
    for container in pod.status.container_statuses or []:
        if container.state and container.state.waiting:
            return container.state.waiting.reason or "waiting"
    return pod.status.reason or "scheduling"


def _lines(response: Any) -> Any:
    pending = b""
    for chunk in response.stream(4096, decode_content=True):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


def fetch(cluster: Cluster, release: str, out_dir: Path, show: Callable[[str], None], wait_s: float = 120.0) -> Path:
    """Copy the finished run directory out of the held master pod into out_dir; its local path."""
    master = cluster.find_master(release)
    pod = cluster.pod(master)
    if problem := pod_problem(pod):
        raise K8sError(problem + "; its run directory went with it")
    if pod.status.phase != "Running":
        raise K8sError(f"master pod {master.pod} is {pod.status.phase}: the run directory is only there while the "
                       "master holds it (the chart's master.hold)")  # fmt: skip
    try:
        done = Done.from_text(cluster.exec(master, ["cat", f"{RUNS_DIR}/{DONE_FILE}"]).decode("utf-8", "replace"))
    except CommandFailed:  # no marker yet
        done = None
    if done is None:
        raise K8sError(f"the run in pod {master.pod} has not finished yet: `loadwise k8s follow {release}` waits for it")
    if done.run in ("", ".", "..") or "/" in done.run:
        raise K8sError(f"the master names an unexpected run directory {done.run!r}")
    if (out_dir / done.run).exists():
        raise K8sError(f"{out_dir / done.run} exists already: move it away or pick another --out")
    show(f"copying {RUNS_DIR}/{done.run} from pod {master.pod} ...")
    archive = cluster.exec(master, ["tar", "cf", "-", "-C", RUNS_DIR, done.run])
    target = extract_run(archive, out_dir, done.run)
    cluster.exec(master, ["touch", f"{RUNS_DIR}/{FETCHED_FILE}"])
    show(f"copied {sum(1 for p in target.rglob('*') if p.is_file())} files ({len(archive) / 1e6:.1f} MB); run {done.status}")
    state, reason = cluster.watch_job(master, wait_s)
    show(f"master Job {master.job}: {state}" + (f" ({reason})" if state != "completed" else ""))
    return target


def extract_run(archive: bytes, out_dir: Path, run: str) -> Path:
    """Unpack a tar of run directory `run` (copied out of the master's pod) into `out_dir`;
    an archive holding anything outside that one directory is refused whole."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            members = tar.getmembers()
            if not members or any(m.name != run and not m.name.startswith(run + "/") for m in members):
                raise K8sError(f"the copy of {run} holds files outside it: refused")
            out_dir.mkdir(parents=True, exist_ok=True)
            tar.extractall(out_dir, filter="data")
    except tarfile.TarError as exc:
        raise K8sError(f"the copy of {run} is not a valid tar stream: {exc}") from None
    return out_dir / run
