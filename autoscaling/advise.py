"""`advise`: the HPA advisor's one entry point, from what a run measured to settings with their evidence.

The run gives the per-pod capacity (its `loadwise capacity` SLO analysis), the CPU per request
(the collector's server CPU over the server's request rate) and the peak memory; the trace is
replayed through the controller simulator with the settings in use (the cluster's, or the
`current_*` settings) and with every searched one. Pure apart from reading a trace CSV: the
CLI reads the run directory and the cluster and prints what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadwise.analysis.stored import Stored
from loadwise.autoscaling import manifest, traces
from loadwise.autoscaling.cluster import ClusterState
from loadwise.autoscaling.hpa import KUBERNETES_SEMANTICS, HPASpec, PodModel, simulate
from loadwise.autoscaling.recommend import BEHAVIORS, Candidate, HpaRecommendation, recommend, sim_step
from loadwise.autoscaling.requests import ResourcesRecommendation, recommend_resources
from loadwise.autoscaling.settings import HpaSettings
from loadwise.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

SERIES_POINTS = 400  # the report's replica chart needs no more


def replicas_in_run(capacity: Stored) -> int:
    """The instances that served the run, as given to `loadwise capacity` (default 1)."""
    settings = capacity.optional_child("settings")
    return 1 if settings is None else settings.whole("replicas_in_run", 1, low=1)


def measured_cpu_per_request(intervals: pd.DataFrame, metrics: pd.DataFrame) -> float | None:
    """CPU seconds per request: server CPU over server request rate, on intervals with load."""
    from loadwise.analysis.align import align, preferred_source

    if metrics.empty:
        return None
    frame = align(intervals, metrics, source=preferred_source(metrics))
    if not {"cpu_cores", "server_rps"} <= set(frame.columns):
        return None
    busy = frame[(frame["server_rps"] > 0) & frame["cpu_cores"].notna()]
    if busy.empty:
        return None
    return float(busy["cpu_cores"].sum() / busy["server_rps"].sum())


def peak_memory_per_pod(metrics: pd.DataFrame, replicas: int) -> float | None:
    """The highest resident memory the collector saw under load, per serving instance."""
    from loadwise.analysis import metrics as m

    memory = metrics[metrics["series"] == m.MEMORY]["value"] if not metrics.empty else metrics
    return float(memory.max()) / replicas if len(memory) and memory.max() > 0 else None


def trace_for(settings: HpaSettings, intervals: pd.DataFrame, capacity_rps: float) -> traces.NamedTrace:
    """The load to replay: a synthetic trace peaking at `peak_rps` (10 pods at capacity unless
    given), the run's own request rate, or a timestamp,rps CSV."""
    import numpy as np

    peak = settings.peak_rps or 10 * capacity_rps
    synthetic = {"diurnal": traces.diurnal, "spike": traces.spike, "ramp": traces.ramp}
    if settings.trace in synthetic:
        return synthetic[settings.trace](peak)
    if settings.trace == "run":
        from loadwise.analysis.align import client_frame

        frame = client_frame(intervals)
        if len(frame) < 2:
            raise UsageError("--trace run: the run has fewer than two intervals")
        return traces.from_series("run", np.array([t.timestamp() for t in frame.index]), frame["rps"].to_numpy(float))
    if settings.trace.endswith(".csv"):
        return traces.from_csv(Path(settings.trace))
    raise UsageError(f"--trace {settings.trace!r}: use diurnal, spike, ramp, run or a .csv file")


def _measured_capacity(block: Stored) -> tuple[float, str]:
    """What the run's capacity analysis says one instance (times the replicas) serves: its
    SLO-bound capacity, else (an open-model step run without an SLO) the highest rate a step
    kept up with before the knee; UsageError when it says neither."""
    slo = block.optional_child("slo")
    if slo is not None and slo.has("capacity_rps"):
        return slo.number("capacity_rps", above=0), f"the run's capacity within {slo.text('slo', 'its SLO')}"
    knee = block.optional_child("offered_knee")
    achieved = knee.data.get("achieved_rps") if knee is not None else None
    if knee is not None and knee.has("after_step") and isinstance(achieved, list) and achieved:
        first = Stored({"rate": achieved[0]}, f"{knee.path}.achieved_rps[0]", knee.where).number("rate", above=0)
        return (first, f"the rate step {knee.whole('after_step')} kept up with, before the knee (no SLO given: "
                       "`loadwise capacity RUN --slo 'p95<...'` bounds it by latency)")  # fmt: skip
    raise UsageError("no per-pod capacity: run `loadwise capacity RUN --slo 'p95<...'` first, or pass --capacity-rps")


@dataclass
class HpaAdvice:
    """Recommended HPA settings beside the current ones, each replayed on the same trace, with
    the measurements they came from and the manifests to apply."""

    trace: traces.NamedTrace
    capacity_rps: float  # per pod, within the SLO
    cpu_per_request: float  # CPU seconds
    cpu_request: float  # cores the current settings run with
    startup_s: float
    recommendation: HpaRecommendation
    resources: ResourcesRecommendation
    manifests: dict[str, str]  # "recommended" and "current": autoscaling/v2 YAML
    resources_patch: str  # YAML patch of the Deployment's requests and limits

    def to_dict(self) -> dict[str, Any]:
        """What `--json` prints."""
        r = self.recommendation
        return {
            "trace": self.trace.name, "peak_rps": self.trace.peak_rps, "duration_s": self.trace.duration_s,
            "budget_s": r.budget_s, "per_pod_capacity_rps": self.capacity_rps, "cpu_per_request_s": self.cpu_per_request,
            "cpu_request_cores": self.cpu_request, "startup_s": self.startup_s, "settings_searched": r.searched,
            "notes": r.notes,
            "recommended": r.recommended.evidence() | {"manifest": self.manifests["recommended"]},
            "current": r.current.evidence() | {"manifest": self.manifests["current"]},
            "resources": {"cpu_request_cores": self.resources.cpu_request, "memory_bytes": self.resources.memory_bytes,
                          "used_by_recommendation": r.recommended_pod.cpu_request == self.resources.cpu_request,
                          "evidence": self.resources.evidence, "patch": self.resources_patch},
            "kubernetes_semantics": KUBERNETES_SEMANTICS,
        }  # fmt: skip

    def report_block(self) -> dict[str, Any]:
        """summary.json's `hpa`: the evidence without the manifests, and both replays' replicas over time."""
        r = self.recommendation
        rec, cur = r.recommended.result, r.current.result
        every = max(1, len(rec.times) // SERIES_POINTS)
        out = self.to_dict()
        return out | {
            "recommended": r.recommended.evidence(), "current": r.current.evidence(),
            "series": {"t": rec.times[::every], "load": rec.load[::every],
                       "recommended": rec.replicas[::every], "current": cur.replicas[::every]},
        }  # fmt: skip


def advise(summary: dict[str, Any], intervals: pd.DataFrame, metrics: pd.DataFrame, settings: HpaSettings,
           cluster: ClusterState | None = None, deployment: str | None = None, namespace: str | None = None,
           run: str = "the run") -> HpaAdvice:  # fmt: skip
    """HPA settings for the run's service: the cheapest searched setting whose SLO-violation time
    on the trace stays within the budget, against the settings in use (`cluster`'s when given)."""
    import yaml

    stored = Stored(summary.get("capacity") or {}, "capacity", f"{run}/summary.json")
    replicas = replicas_in_run(stored)
    capacity, source = settings.capacity_rps, "given (--capacity-rps)"
    if capacity is None:
        capacity, source = _measured_capacity(stored)
        capacity /= replicas
    cpu = settings.cpu_per_request or measured_cpu_per_request(intervals, metrics)
    if not cpu:
        raise UsageError("no CPU per request: run with --scrape or --prometheus so the server's CPU is collected, "
                         "or pass --cpu-per-request")  # fmt: skip
    cpu_request = cluster.cpu_request if cluster and cluster.cpu_request else settings.cpu_request
    pod = PodModel(cpu_per_request=cpu, capacity_rps=capacity, cpu_request=cpu_request, startup_s=settings.startup)
    resources = recommend_resources(capacity, cpu, pod.idle_cpu, peak_memory_per_pod(metrics, replicas),
                                    settings.memory_margin)  # fmt: skip
    current = cluster.hpa if cluster and cluster.hpa else None
    if current is None:
        try:  # only the current_* values: a ValueError from elsewhere is a bug, not bad input
            current = HPASpec(settings.current_min, settings.current_max, "cpu", settings.current_target)
        except ValueError as exc:
            raise UsageError(f"--current-min/--current-max/--current-target: {exc}") from None
    trace = trace_for(settings, intervals, capacity)
    # The recommended settings are searched with the recommended request, so their CPU target is
    # a share of the SLO-bound capacity; the current ones keep the request they run with.
    result = recommend(pod, trace, current, settings, resized=replace(pod, cpu_request=resources.cpu_request))
    result.notes.insert(0, f"per-pod capacity {capacity:.1f} req/s: {source}")
    name = deployment or "my-service"
    manifests = {}
    for key, candidate, request in (("recommended", result.recommended, result.recommended_pod.cpu_request),
                                    ("current", result.current, cpu_request)):  # fmt: skip
        try:
            manifests[key] = manifest.to_yaml(manifest.hpa_manifest(candidate.spec, name, namespace, request))
        except manifest.ManifestError as exc:
            raise UsageError(str(exc)) from None
    patch = yaml.safe_dump(resources.patch(name), sort_keys=False)
    return HpaAdvice(trace, capacity, cpu, cpu_request, settings.startup, result, resources, manifests, patch)


REPLAY_FACTORS = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class StoredHpa:
    """What a replay needs from summary.json's `hpa`, each value checked as it is read."""

    pod: PodModel  # the pod the current settings run with
    searched: PodModel  # the pod the recommended settings were simulated with (its CPU request)
    trace: str
    peak_rps: float
    budget_s: float
    recommended: HPASpec
    current: HPASpec
    labels: tuple[str, str]  # the recommended and current settings' behavior labels

    @classmethod
    def read(cls, block: Stored) -> StoredHpa:
        pod = PodModel(cpu_per_request=block.number("cpu_per_request_s", above=0),
                       capacity_rps=block.number("per_pod_capacity_rps", above=0),
                       cpu_request=block.number("cpu_request_cores", above=0), startup_s=block.number("startup_s", low=0))  # fmt: skip
        resources = block.optional_child("resources")
        searched = pod
        if resources is not None and resources.flag("used_by_recommendation"):
            searched = replace(pod, cpu_request=resources.number("cpu_request_cores", above=0))

        def spec(key: str) -> tuple[HPASpec, str]:
            evidence = block.child(key)
            label = evidence.text("behavior", "")
            up, down = BEHAVIORS.get(label, BEHAVIORS["default"])
            try:
                return HPASpec(evidence.whole("min_replicas", low=1), evidence.whole("max_replicas", low=1), "cpu",
                               evidence.number("target", above=0), up, down), label  # fmt: skip
            except ValueError as exc:
                raise evidence.error("", f"is not a valid HPA setting: {exc}") from None

        (recommended, rec_label), (current, cur_label) = spec("recommended"), spec("current")
        return cls(pod, searched, block.text("trace"), block.number("peak_rps", above=0), block.number("budget_s", low=0),
                   recommended, current, (rec_label, cur_label))  # fmt: skip


def replay(stored: StoredHpa, intervals: pd.DataFrame,
           factors: tuple[float, ...] = REPLAY_FACTORS) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:  # fmt: skip
    """The stored advice replayed: its recommended and current settings on its trace with the
    load scaled by each factor, through the same simulator and pod model. Returns (factor,
    recommended's evidence, current's evidence) per factor. Settings kept "as configured" replay
    with Kubernetes' default behavior (the stored evidence has no rules)."""
    settings = HpaSettings(trace=stored.trace, peak_rps=stored.peak_rps)
    if settings.trace not in ("diurnal", "spike", "ramp", "run"):
        raise UsageError(f"the advice was made on trace {settings.trace!r}: replay it with `loadwise advise hpa --trace` instead")
    base = trace_for(settings, intervals, stored.pod.capacity_rps)
    step = sim_step(base.duration_s)
    out = []
    for factor in factors:
        def scaled(t: float, f: float = factor) -> float:
            return f * base.rps(t)

        pairs = ((stored.recommended, stored.searched, stored.labels[0]), (stored.current, stored.pod, stored.labels[1]))
        runs = [Candidate(spec, simulate(spec, model, scaled, base.duration_s, step_s=step), label).evidence()
                for spec, model, label in pairs]
        out.append((factor, runs[0], runs[1]))
    return out
