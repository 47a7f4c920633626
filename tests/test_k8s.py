"""`loadwise k8s follow|fetch` end to end through HTTP with the real `kubernetes` client.

No Kubernetes API server can run on this machine (no container runtime, no cluster), so
the client talks to tests/fake_kube.py, a local HTTP server answering with recorded API
responses (tests/k8s_api/): a Job list and watch to completion, the master pod and its
log, pod exec over a WebSocket for the tar copy, 403 and 404 statuses.
"""

import io
import tarfile
from pathlib import Path

import pytest
from conftest import CliResult, assert_one_line_error, run_cli
from fake_kube import FakeKube, Script
from synthetic import make_run

from loadwise.k8s.follow import K8sError, extract_run

RUN_ID = "20261126T140005Z-browse"
DONE = b'{"run": "20261126T140005Z-browse", "status": "completed", "exit_code": 0}'


@pytest.fixture
def k8s_cli(tmp_path, cli_here, monkeypatch):
    """`loadwise k8s ARGS` in this process, pointed at a fake cluster."""

    def call(kube: FakeKube, *args: str) -> CliResult:
        monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig(tmp_path / "kubeconfig")))
        return cli_here("k8s", *args)

    return call


def test_follow_shows_progress_until_the_run_finishes(tmp_path, k8s_cli):
    with FakeKube() as kube:
        result = k8s_cli(kube, "follow", "shop-load")
    assert result.code == 0, result.stderr
    assert "users   80 |   622.9 req/s | p95   41 ms" in result.stderr
    assert f"run {RUN_ID} finished: completed" in result.stderr and "loadwise k8s fetch shop-load" in result.stderr
    paths = [path for path, _ in kube.script.requests]
    jobs_query = dict(kube.script.requests[0][1])
    assert jobs_query["labelSelector"] == ["app.kubernetes.io/instance=shop-load,app.kubernetes.io/component=master"]
    assert paths[0] == "/apis/batch/v1/namespaces/load/jobs"  # the kubeconfig context's namespace
    log_query = next(q for p, q in kube.script.requests if p.endswith("/log"))
    assert log_query["follow"] == ["true"] and log_query["container"] == ["master"]


def test_follow_resumes_a_log_stream_the_api_server_cut(tmp_path, k8s_cli):
    partial = tmp_path / "partial.log"
    partial.write_text("[  10s/120s] users   40 |   311.4 req/s | p95   38 ms | failures 0 (0.0%) | requests 3114\n")
    with FakeKube(Script(log=[str(partial), "master.log"])) as kube:
        result = k8s_cli(kube, "follow", "shop-load")
    assert result.code == 0, result.stderr
    logs = [q for p, q in kube.script.requests if p.endswith("/log")]
    assert len(logs) == 2 and "sinceSeconds" not in logs[0] and logs[1]["sinceSeconds"] == ["5"]
    assert f"run {RUN_ID} finished: completed" in result.stderr


@pytest.mark.slow
def test_follow_watches_the_job_to_its_end_when_the_log_has_no_finished_run(tmp_path, k8s_cli):
    log = tmp_path / "master.log"
    log.write_text("[  10s/60s] users   10 |   100.0 req/s | p95   12 ms | failures 0 (0.0%) | requests 1000\n")
    # Pending, then running until its log ends, then done (a master run without --hold).
    with FakeKube(Script(log=str(log), pod=["pod-pending.json", "pod.json", "pod-succeeded.json"])) as kube:
        done = k8s_cli(kube, "follow", "shop-load")
    assert done.code == 0, done.stderr
    assert "waiting for pod shop-load-loadwise-master-x7k2p (ContainerCreating)" in done.stderr
    assert "users   10 |   100.0 req/s" in done.stderr
    assert "master Job shop-load-loadwise-master completed" in done.stderr
    watch = [q for p, q in kube.script.requests if q.get("watch") == ["true"]]
    assert watch and watch[0]["fieldSelector"] == ["metadata.name=shop-load-loadwise-master"]
    with FakeKube(Script(log=str(log), pod=["pod.json", "pod-succeeded.json"], watch="job-watch-failed.jsonl")) as kube:
        failed = k8s_cli(kube, "follow", "shop-load")
    assert failed.code == 1
    assert "master Job shop-load-loadwise-master failed: BackoffLimitExceeded" in failed.stderr.splitlines()[-1]


def test_a_master_that_cannot_pull_its_image_is_reported(tmp_path, k8s_cli):
    with FakeKube(Script(pod="pod-imagepull.json")) as kube:
        result = k8s_cli(kube, "follow", "shop-load")
    assert result.code == 1
    assert "cannot start: ImagePullBackOff: Back-off pulling image" in result.stderr.strip().splitlines()[-1]


def test_an_evicted_master_is_reported_as_a_failed_run(tmp_path, k8s_cli):
    with FakeKube(Script(pod="pod-evicted.json")) as kube:
        result = k8s_cli(kube, "follow", "shop-load")
        fetch = k8s_cli(kube, "fetch", "shop-load", "--out", str(tmp_path / "out"))
    assert result.code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "was evicted: The node was low on resource: memory" in last and "Traceback" not in result.stderr
    assert fetch.code == 2
    assert_one_line_error(fetch, "was evicted", "its run directory went with it")


def _tar_of(run_dir: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(run_dir, arcname=run_dir.name)
    return buffer.getvalue()


def test_fetch_copies_the_run_directory_and_releases_the_master(tmp_path, k8s_cli):
    source = make_run(tmp_path / "pod-runs" / RUN_ID, {("GET", "/a"): 5.0, ("GET", "/b"): 9.0}, seconds=20).path
    commands = []

    def exec_in_pod(command):
        commands.append(command)
        if command[0] == "cat":
            return DONE, b"", 0
        if command[0] == "tar":
            return _tar_of(source), b"", 0
        if command[0] == "touch":
            return b"", b"", 0
        return b"", b"sh: unexpected", 127

    with FakeKube(Script(exec=exec_in_pod)) as kube:
        result = k8s_cli(kube, "fetch", "shop-load", "--out", str(tmp_path / "out"))
        again = k8s_cli(kube, "fetch", "shop-load", "--out", str(tmp_path / "out"))
    assert result.code == 0, result.stderr
    fetched = Path(result.stdout.strip().splitlines()[-1])
    assert fetched == tmp_path / "out" / RUN_ID
    assert [c[0] for c in commands] == ["cat", "tar", "touch", "cat"]  # the second fetch stops before copying
    assert commands[1] == ["tar", "cf", "-", "-C", "/runs", RUN_ID] and commands[2] == ["touch", "/runs/.loadwise-fetched"]
    originals = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert originals and originals == sorted(p.relative_to(fetched) for p in fetched.rglob("*") if p.is_file())
    assert all((fetched / p).read_bytes() == (source / p).read_bytes() for p in originals)
    assert "master Job shop-load-loadwise-master: completed" in result.stderr
    report = run_cli("report", str(fetched))  # the fetched run works with the usual commands
    assert report.code == 0, report.stderr
    assert again.code == 2  # a second copy never overwrites the first
    assert_one_line_error(again, "exists already")


def test_fetch_before_the_run_finished_says_so(tmp_path, k8s_cli):
    script = Script(exec=lambda command: (b"", b"cat: can't open '/runs/.loadwise-done.json': No such file or directory", 1))
    with FakeKube(script) as kube:
        result = k8s_cli(kube, "fetch", "shop-load")
    assert result.code == 2
    assert_one_line_error(result, "has not finished yet", "loadwise k8s follow shop-load")


def test_forbidden_and_not_found_are_one_line_errors(tmp_path, k8s_cli):
    with FakeKube(Script(jobs="status-403.json")) as kube:
        forbidden = k8s_cli(kube, "follow", "shop-load")
    assert forbidden.code == 2
    assert_one_line_error(forbidden, "forbidden", 'cannot list resource "jobs"', "pods/exec")
    with FakeKube(Script(pod="status-404.json")) as kube:
        gone = k8s_cli(kube, "fetch", "shop-load")
    assert gone.code == 2
    assert_one_line_error(gone, "not found", "shop-load-loadwise-master-x7k2p")
    with FakeKube(Script(exec_denied=True)) as kube:
        no_exec = k8s_cli(kube, "fetch", "shop-load")
    assert no_exec.code == 2
    assert_one_line_error(no_exec, "forbidden", "pods/exec")
    with FakeKube(Script(jobs="jobs-empty.json")) as kube:
        missing = k8s_cli(kube, "follow", "other", "--namespace", "elsewhere")
    assert missing.code == 2
    assert_one_line_error(missing, "no loadwise master Job for release 'other' in namespace 'elsewhere'")
    assert kube.script.requests[0][0] == "/apis/batch/v1/namespaces/elsewhere/jobs"
    unreachable = FakeKube()
    unreachable.server.server_close()  # nothing listens on that port any more
    dead = k8s_cli(unreachable, "follow", "shop-load")
    assert dead.code == 2
    assert_one_line_error(dead, "cannot reach the Kubernetes API")


def test_no_kubeconfig_is_one_line(tmp_path):
    result = run_cli("k8s", "follow", "shop-load", env={"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)})
    assert result.code == 2
    assert_one_line_error(result, "no Kubernetes configuration")


def test_a_copy_with_paths_outside_the_run_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(K8sError, match="outside it"):
        extract_run(buffer.getvalue(), tmp_path / "out", RUN_ID)
    assert not (tmp_path / "escape.txt").exists()
