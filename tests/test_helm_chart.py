"""The Helm chart (deploy/helm/loadwise), rendered by Helm's own engine, offline.

Every values file must render, lint clean and give objects that pass Kubernetes' schemas
in strict mode; the pods must run the command lines loadwise implements and the
security settings the chart promises; scenario files must reach the ConfigMap unchanged;
a target host outside the allow-list must stop the render.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadwise.cli.main import build_parser
from loadwise.config import check_host_allowed, load_profile, threshold_texts
from loadwise.durations import parse_duration
from loadwise.shapes.catalog import build_shape, parse_shape_params
from loadwise.shapes.rates import ArrivalOptions

helm_python = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

CHART = Path(__file__).resolve().parent.parent / "deploy" / "helm" / "loadwise"
ENVS = ("dev", "staging", "prod")
RELEASE = "shop-load"
NAMESPACE = "load"
MASTER = f"{RELEASE}-loadwise-master"
# kubernetes-validate only warns about an apiVersion it has no schema for, so the set of
# objects the chart may produce is pinned here.
EXPECTED_KINDS = {("batch/v1", "Job"), ("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap")}
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def env_values(env: str) -> dict[str, Any]:
    return yaml.safe_load((CHART / f"values-{env}.yaml").read_text(encoding="utf-8"))


def objects_of(manifests: dict[str, str]) -> list[dict[str, Any]]:
    found = []
    for path, text in manifests.items():
        if path.endswith(".yaml"):
            found += [doc for doc in yaml.safe_load_all(text) if doc]
    return found


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def option(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} should appear once in {args}"
    return args[args.index(flag) + 1]


def loadwise_args(container: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> argparse.Namespace:
    """The container's args as the image's entrypoint gets them, parsed by loadwise's own parser.

    The chart sets no `command`, so the args follow the image's ENTRYPOINT ["loadwise"]
    (tests/test_dockerfile.py pins it). Comparing strings with the chart alone would pass a
    misspelled flag, a flag loadwise never had, or a value its type refuses; the real
    parser rejects each of those as the pod would, before any load.
    """
    assert "command" not in container, "a command would replace the image's `loadwise` entrypoint"
    try:
        return build_parser().parse_args(container["args"])
    except SystemExit as exc:
        pytest.fail(f"loadwise refuses the {container['name']} args {container['args']}: "
                    f"exit {exc.code}: {capsys.readouterr().err.strip()}")  # fmt: skip


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def volume_of(spec: dict[str, Any], container: dict[str, Any], mount_path: str) -> dict[str, Any]:
    mounts = [m for m in container["volumeMounts"] if m["mountPath"] == mount_path]
    assert len(mounts) == 1, f"{container['name']}: nothing mounted at {mount_path}"
    return next(v for v in spec["volumes"] if v["name"] == mounts[0]["name"])


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value: object, resource: str) -> float:
    text = str(value)
    if resource == "cpu":
        match = _CPU.match(text)
        assert match, f"cpu quantity {text!r}"
        return float(match[1]) / (1000 if match[2] else 1)
    match = re.match(r"^(\d+(?:\.\d+)?)([kMG]i?|)$", text)
    assert match, f"memory quantity {text!r}"
    return float(match[1]) * _MEMORY_UNITS[match[2]]


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def rendered(chart: Any) -> dict[str, list[dict[str, Any]]]:
    return {env: objects_of(chart.render(values=env_values(env), name=RELEASE, namespace=NAMESPACE)) for env in ENVS}


@pytest.fixture(scope="module")
def merged(chart: Any) -> dict[str, dict[str, Any]]:
    """What `helm install -f values-<env>.yaml` uses: values.yaml coalesced with the file."""
    return {env: chart.merge_values(env_values(env)) for env in ENVS}


def test_render_merges_the_chart_defaults_like_helm_install(chart: Any, rendered: dict, merged: dict) -> None:
    for env in ENVS:
        assert objects_of(chart.render(values=merged[env], name=RELEASE, namespace=NAMESPACE)) == rendered[env]


@pytest.mark.parametrize("env", ENVS)
def test_lints_clean(env: str) -> None:
    report = helm_python.lint(CHART, values=env_values(env), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [] and report["errors"] == []


def test_default_values_render_and_lint(chart: Any) -> None:
    assert {(o["apiVersion"], o["kind"]) for o in objects_of(chart.render(name=RELEASE))} == EXPECTED_KINDS
    report = helm_python.lint(CHART, strict=True)
    assert [m for m in report["messages"] if m["severity"] >= 2] == [] and report["errors"] == []


@pytest.mark.parametrize("env", ENVS)
def test_objects_pass_strict_schema_validation(env: str, rendered: dict) -> None:
    version = kubernetes_validate.latest_version()
    objects = rendered[env]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == [
        ("ConfigMap", f"{RELEASE}-loadwise-config"),
        ("ConfigMap", f"{RELEASE}-loadwise-scenarios"),
        ("Deployment", f"{RELEASE}-loadwise-worker"),
        ("Job", MASTER),
        ("Service", MASTER),
    ]
    for obj in objects:
        assert (obj["apiVersion"], obj["kind"]) in EXPECTED_KINDS
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.message}")


@pytest.mark.parametrize("env", ENVS)
def test_master_job_runs_headless_master_for_all_workers(
    env: str, rendered: dict, merged: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    objects, values = rendered[env], merged[env]
    job = one(objects, "Job", MASTER)
    workers = one(objects, "Deployment")
    assert job["spec"]["backoffLimit"] == 0
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    [container] = spec["containers"]
    assert container["name"] == "master"  # `loadwise k8s fetch` execs into this container
    args = container["args"]

    # What loadwise reads out of the argv, value by value and typed, as the pod would run it.
    load = values["load"]
    run = loadwise_args(container, capsys)
    assert (run.command, run.scenario) == ("run", f"/scenarios/{values['scenario']['file']}")
    assert run.expect_workers == workers["spec"]["replicas"] == values["workers"]["replicas"]
    assert (run.profile, run.listen, run.master_port, run.exporter_port) == ("k8s", "0.0.0.0", 5557, 9646)
    assert run.out == Path("/runs") and run.hold == parse_duration(values["master"]["hold"])
    assert (run.shape, run.users, run.spawn_rate) == (load["shape"], load["users"], load.get("spawnRate"))
    assert run.duration == parse_duration(load["duration"]) and run.interval == float(load["interval"])
    assert parse_shape_params(run.shape_param) == {k: str(v) for k, v in load["shapeParams"].items()}
    assert run.tag == [f"environment={values['environment']}"]
    assert run.cache_endpoint == [str(e) for e in load.get("cacheEndpoints", [])]
    assert run.host is None  # the profile's host: the allow-list in loadwise.toml applies to it
    # The shape accepts these parameters with this load (a parameter the shape does not take fails here).
    arrivals = ArrivalOptions(rate=run.rate, max_users=run.max_users, arrivals=run.arrivals)
    build_shape(run.shape, run.users, run.duration, run.spawn_rate, parse_shape_params(run.shape_param), arrivals)

    assert args[:2] == ["run", f"/scenarios/{values['scenario']['file']}"]
    assert int(option(args, "--expect-workers")) == workers["spec"]["replicas"] == values["workers"]["replicas"]
    assert option(args, "--profile") == "k8s"
    assert option(args, "--listen") == "0.0.0.0"
    assert option(args, "--master-port") == "5557"
    assert option(args, "--exporter-port") == "9646"
    assert option(args, "--hold") == values["master"]["hold"]
    assert option(args, "--out") == "/runs"
    assert "emptyDir" in volume_of(spec, container, "/runs")
    assert option(args, "--tag") == f"environment={values['environment']}"
    load = values["load"]
    for flag, key in (("--shape", "shape"), ("--users", "users"), ("--duration", "duration"), ("--interval", "interval")):
        assert option(args, flag) == str(load[key])
    shape_params = [args[i + 1] for i, a in enumerate(args) if a == "--shape-param"]
    assert shape_params == [f"{k}={v}" for k, v in sorted(load["shapeParams"].items())]

    config = option(args, "--loadwise-config")
    config_volume = volume_of(spec, container, str(Path(config).parent))
    config_map = one(objects, "ConfigMap", config_volume["configMap"]["name"])
    assert Path(config).name in config_map["data"]
    scenarios_volume = volume_of(spec, container, "/scenarios")
    assert values["scenario"]["file"] in one(objects, "ConfigMap", scenarios_volume["configMap"]["name"])["data"]

    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"master": 5557, "metrics": 9646}
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9646"
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("env", ENVS)
def test_labels_let_loadwise_k8s_find_the_master(env: str, rendered: dict) -> None:
    job = one(rendered[env], "Job", MASTER)
    wanted = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/name": "loadwise", "app.kubernetes.io/component": "master"}
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert wanted.items() <= labels.items()
    worker_labels = one(rendered[env], "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert worker_labels["app.kubernetes.io/component"] == "worker"
    assert worker_labels["app.kubernetes.io/instance"] == RELEASE


@pytest.mark.parametrize("env", ENVS)
def test_service_exposes_the_master_to_the_workers(
    env: str, rendered: dict, merged: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    objects = rendered[env]
    service = one(objects, "Service", MASTER)
    job, workers = one(objects, "Job", MASTER), one(objects, "Deployment")
    assert service["spec"]["type"] == "ClusterIP"
    selector = service["spec"]["selector"].items()
    assert selector <= job["spec"]["template"]["metadata"]["labels"].items()
    assert not selector <= workers["spec"]["template"]["metadata"]["labels"].items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert {name: p["port"] for name, p in ports.items()} == {"master": 5557, "metrics": 9646}
    master_ports = {p["name"] for p in pod_spec(job)["containers"][0]["ports"]}
    assert {p["targetPort"] for p in ports.values()} <= master_ports

    [worker] = pod_spec(workers)["containers"]
    args = worker["args"]
    assert args[:2] == ["worker", f"/scenarios/{merged[env]['scenario']['file']}"]
    assert option(args, "--master-host") == service["metadata"]["name"]
    assert int(option(args, "--master-port")) == ports["master"]["port"]
    assert option(args, "--interval") == option(pod_spec(job)["containers"][0]["args"], "--interval")
    worker_run = loadwise_args(worker, capsys)
    master_run = loadwise_args(pod_spec(job)["containers"][0], capsys)
    assert (worker_run.command, worker_run.scenario) == ("worker", master_run.scenario)
    assert (worker_run.master_host, worker_run.master_port) == (service["metadata"]["name"], ports["master"]["port"])
    assert master_run.master_port == ports["master"]["port"]
    # The master merges the workers' histograms interval by interval: both must cut the same ones.
    assert worker_run.interval == master_run.interval
    assert worker_run.cache_endpoint == master_run.cache_endpoint
    assert workers["spec"]["selector"]["matchLabels"].items() <= workers["spec"]["template"]["metadata"]["labels"].items()
    assert volume_of(pod_spec(workers), worker, "/scenarios") == volume_of(pod_spec(job), pod_spec(job)["containers"][0], "/scenarios")


@pytest.mark.parametrize("env", ENVS)
def test_pods_are_locked_down_and_bounded(env: str, rendered: dict, merged: dict) -> None:
    pods = [o for o in rendered[env] if o["kind"] in ("Job", "Deployment")]
    assert len(pods) == 2
    for obj in pods:
        spec = pod_spec(obj)
        assert spec["automountServiceAccountToken"] is False
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == security["runAsGroup"] == security["fsGroup"] == 10001
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        values = merged[env]["master" if obj["kind"] == "Job" else "workers"]
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "emptyDir" in volume_of(spec, container, "/tmp")
            resources = container["resources"]
            assert resources == values["resources"]
            for resource in ("cpu", "memory"):
                assert quantity(resources["requests"][resource], resource) <= quantity(resources["limits"][resource], resource)


@pytest.mark.parametrize("env", ENVS)
def test_loadwise_toml_carries_the_profile(env: str, rendered: dict, merged: dict, tmp_path: Path) -> None:
    values = merged[env]
    text = one(rendered[env], "ConfigMap", f"{RELEASE}-loadwise-config")["data"]["loadwise.toml"]
    profile = tomllib.loads(text)["profiles"]["k8s"]
    assert profile == {
        "host": values["target"]["host"],
        "allowed_hosts": values["allowedHosts"],
        "slos": values["slos"],
        "thresholds": values["thresholds"],
    }
    # loadwise itself must accept what the chart accepted.
    (tmp_path / "loadwise.toml").write_text(text, encoding="utf-8")
    loaded = load_profile("k8s", tmp_path / "loadwise.toml")
    check_host_allowed(loaded.host, loaded.allowed_hosts)
    assert threshold_texts(loaded) == values["slos"] + values["thresholds"]


def test_values_files_differ_where_environments_differ(merged: dict) -> None:
    replicas = [merged[env]["workers"]["replicas"] for env in ENVS]
    assert replicas == sorted(set(replicas)), "dev < staging < prod workers"
    for key in (
        lambda v: v["workers"]["resources"],
        lambda v: v["master"]["resources"],
        lambda v: v["target"]["host"],
        lambda v: v["allowedHosts"],
        lambda v: (v["slos"], v["thresholds"]),
    ):
        assert len({repr(key(merged[env])) for env in ENVS}) == len(ENVS)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("https://not-allowed.example:8443/path", ["shop.example"]),
        ("https://api.shop.example", ["shop.example"]),
        ("http://10.21.0.5:8000", ["10.20.0.0/16"]),
        ("http://shop.dev.svc.cluster.local.evil.example", ["shop.dev.svc.cluster.local"]),
        ("https://shop.example", []),
    ],
)
def test_a_host_outside_the_allow_list_is_refused(chart: Any, host: str, allowed: list[str]) -> None:
    hostname = host.split("://")[1].split("/")[0].split(":")[0]
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(f'"{hostname}"')):
        chart.render(values={**env_values("staging"), "target": {"host": host}, "allowedHosts": allowed}, name=RELEASE)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("http://10.20.3.4:8000", ["10.20.0.0/16"]), ("https://Shop.Example/", ["shop.example"]), ("http://10.0.0.7", ["10.0.0.7"])],
)
def test_a_listed_host_or_network_is_accepted(chart: Any, host: str, allowed: list[str]) -> None:
    objects = objects_of(chart.render(values={"target": {"host": host}, "allowedHosts": allowed}, name=RELEASE))
    text = one(objects, "ConfigMap", f"{RELEASE}-loadwise-config")["data"]["loadwise.toml"]
    assert tomllib.loads(text)["profiles"]["k8s"]["host"] == host
    check_host_allowed(host, allowed)


def test_worker_count_must_be_positive(chart: Any) -> None:
    with pytest.raises(helm_python.HelmRenderError, match="workers.replicas"):
        chart.render(values={"workers": {"replicas": 0}}, name=RELEASE)


AWKWARD = (
    "# -*- coding: utf-8 -*-\r\n"
    '"""Café, 日本語, emoji 🚀 and a literal {{ .Values.target.host }} and {{ }}."""\n'
    "\n"
    "\tindented_with_tab = 1\t\n"
    "trailing = 'spaces'   \n"
    "   \n"
    "---\n"
    "key: value  # looks like YAML\n"
    + "long = '" + "word " * 40 + "'\n"
    + '"quoted" \\backslash\\ \'single\'\n'
    "\n\n"
    "no_final_newline = True  "
)


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "loadwise"
    shutil.copytree(CHART, copy)
    return copy


def test_scenario_files_reach_the_configmap_byte_for_byte(chart_copy: Path) -> None:
    (chart_copy / "scenarios" / "awkward_1.py").write_bytes(AWKWARD.encode("utf-8"))
    with helm_python.Chart.load(chart_copy) as copy:
        objects = objects_of(copy.render(values={**env_values("dev"), "scenario": {"file": "awkward_1.py"}}, name=RELEASE))
    data = one(objects, "ConfigMap", f"{RELEASE}-loadwise-scenarios")["data"]
    expected = {p.name: p.read_bytes() for p in (chart_copy / "scenarios").glob("*.py")}
    assert {name: text.encode("utf-8") for name, text in data.items()} == expected
    assert option(pod_spec(one(objects, "Job"))["containers"][0]["args"], "--expect-workers") == "2"
    assert pod_spec(one(objects, "Deployment"))["containers"][0]["args"][1] == "/scenarios/awkward_1.py"


def test_a_scenario_file_name_that_is_no_configmap_key_is_refused(chart_copy: Path) -> None:
    (chart_copy / "scenarios" / "my scenario.py").write_text("pass\n", encoding="utf-8")
    with helm_python.Chart.load(chart_copy) as copy, pytest.raises(helm_python.HelmRenderError, match="my scenario.py"):
        copy.render(values=env_values("dev"), name=RELEASE)


def test_an_unknown_scenario_file_is_refused(chart: Any) -> None:
    with pytest.raises(helm_python.HelmRenderError, match="nope.py"):
        chart.render(values={"scenario": {"file": "nope.py"}}, name=RELEASE)


def test_an_existing_configmap_replaces_the_charts_scenarios(chart: Any) -> None:
    values = {**env_values("prod"), "scenarios": {"existingConfigMap": "shop-scenarios"}, "scenario": {"file": "checkout.py"}}
    objects = objects_of(chart.render(values=values, name=RELEASE))
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"] == [f"{RELEASE}-loadwise-config"]
    for obj in (one(objects, "Job"), one(objects, "Deployment")):
        spec = pod_spec(obj)
        [container] = spec["containers"]
        assert volume_of(spec, container, "/scenarios")["configMap"]["name"] == "shop-scenarios"
        assert container["args"][1] == "/scenarios/checkout.py"
    for obj in objects:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_names_stay_valid_dns_labels_for_the_longest_release_name(chart: Any) -> None:
    release = "r" * 53  # Helm's limit
    objects = objects_of(chart.render(values=env_values("dev"), name=release))
    for obj in objects:
        if obj["kind"] in ("Service", "Job", "Deployment"):
            assert DNS_LABEL.match(obj["metadata"]["name"]), obj["metadata"]["name"]
    service = one(objects, "Service")["metadata"]["name"]
    assert option(pod_spec(one(objects, "Deployment"))["containers"][0]["args"], "--master-host") == service


def test_a_rate_shape_reaches_the_master_and_its_workers(chart: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """load.shape step-rate with load.rate: the master runs the open model at that rate and the
    workers' users wait for its arrivals (their `--shape`); loadwise's own parser takes both."""
    load = {"shape": "step-rate", "rate": 800, "maxUsers": 400, "arrivals": "poisson", "users": 40, "shapeParams": {"steps": 4}}
    objects = objects_of(chart.render(values={"load": load}, name=RELEASE))
    job, workers = one(objects, "Job", MASTER), one(objects, "Deployment")
    master_run = loadwise_args(pod_spec(job)["containers"][0], capsys)
    worker_run = loadwise_args(pod_spec(workers)["containers"][0], capsys)
    assert (master_run.shape, master_run.rate, master_run.max_users, master_run.arrivals) == ("step-rate", 800, 400, "poisson")
    assert worker_run.shape == "step-rate"
    arrivals = ArrivalOptions(rate=master_run.rate, max_users=master_run.max_users, arrivals=master_run.arrivals)
    shape = build_shape(master_run.shape, master_run.users, master_run.duration, None, parse_shape_params(master_run.shape_param), arrivals)
    assert shape.planned() == pytest.approx(800 * (1 + 2 + 3 + 4) / 4 / 4 * master_run.duration)
    closed = objects_of(chart.render(values={}, name=RELEASE))
    assert "--shape" not in pod_spec(one(closed, "Deployment"))["containers"][0]["args"]
