"""The HPA controller between syncs: from the metrics' proposals to the replica count it sets.

A port of the normalization in Kubernetes' `pkg/controller/podautoscaler/horizontal.go`
(Kubernetes 1.33), checked against that file's unit tests (tests/test_hpa_kubernetes.py):

- the first sync seeds the recommendations with the current replica count, so a new
  controller cannot scale down inside the stabilization window;
- spec replicas 0 with minReplicas above 0 means autoscaling is disabled (stays 0);
  above maxReplicas or below minReplicas goes straight to the bound;
- several metrics: each proposes, the highest wins;
- with `behavior`: stabilization (the lowest recommendation of the scale-up window, the
  highest of the scale-down window), then the policies, each measured from the replica
  count at the start of its period (`current - added + deleted` in that period);
- without `behavior` (autoscaling/v1 style): the highest recommendation of the downscale
  stabilization window (5 min), and scale-up at most to max(2 x current, 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KUBERNETES_SEMANTICS = "1.33"  # the controller version whose behaviour this reproduces
SCALE_UP_LIMIT_FACTOR = 2.0  # the no-behavior path: at most double ...
SCALE_UP_LIMIT_MINIMUM = 4  # ... or 4 replicas, whichever is more
DEFAULT_DOWNSCALE_WINDOW_S = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization


@dataclass(frozen=True)
class Policy:
    type: str  # "Pods" or "Percent"
    value: int
    period_s: float


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window_s: float
    policies: tuple[Policy, ...]
    select_policy: str = "Max"  # "Max", "Min" or "Disabled"
    tolerance: float | None = None  # per-direction tolerance (HPA field since 1.33); None: the controller's


# The documented defaults of autoscaling/v2 `behavior`.
DEFAULT_SCALE_UP = ScalingRules(0.0, (Policy("Percent", 100, 15.0), Policy("Pods", 4, 15.0)), "Max")
DEFAULT_SCALE_DOWN = ScalingRules(300.0, (Policy("Percent", 100, 15.0),), "Max")


def scale_up_limit(current: int, up_events: list[tuple[float, int]], down_events: list[tuple[float, int]],
                   rules: ScalingRules, now_s: float) -> int:  # fmt: skip
    """The most replicas the scale-up policies allow now: calculateScaleUpLimitWithScalingRules."""
    if rules.select_policy == "Disabled":
        return current
    pick, result = (min, math.inf) if rules.select_policy == "Min" else (max, -math.inf)
    for policy in rules.policies:
        start = current - _changed(up_events, policy.period_s, now_s) + _changed(down_events, policy.period_s, now_s)
        proposed = start + policy.value if policy.type == "Pods" else math.ceil(start * (1 + policy.value / 100))
        result = pick(result, proposed)
    return int(result)


def scale_down_limit(current: int, up_events: list[tuple[float, int]], down_events: list[tuple[float, int]],
                     rules: ScalingRules, now_s: float) -> int:  # fmt: skip
    """The fewest replicas the scale-down policies allow now: calculateScaleDownLimitWithBehaviors."""
    if rules.select_policy == "Disabled":
        return current
    pick, result = (max, -math.inf) if rules.select_policy == "Min" else (min, math.inf)
    for policy in rules.policies:
        start = current - _changed(up_events, policy.period_s, now_s) + _changed(down_events, policy.period_s, now_s)
        # Go's int32() truncates toward zero: 3 * (1 - 0.5) = 1.5 keeps 1.
        proposed = start - policy.value if policy.type == "Pods" else int(start * (1 - policy.value / 100))
        result = pick(result, proposed)
    return int(result)


def _changed(events: list[tuple[float, int]], period_s: float, now_s: float) -> int:
    """Replicas changed by the events inside the period (getReplicasChangePerPeriod)."""
    return sum(change for at, change in events if at > now_s - period_s)


class HPAController:
    """One HPA's controller state: recommendations and scale events, as horizontal.go keeps them.

    `behavior` is the pair (scale_up, scale_down); None for an HPA without `behavior`.
    """

    def __init__(self, min_replicas: int, max_replicas: int, behavior: tuple[ScalingRules, ScalingRules] | None,
                 downscale_window_s: float = DEFAULT_DOWNSCALE_WINDOW_S,
                 scale_up_limit_factor: float = SCALE_UP_LIMIT_FACTOR):  # fmt: skip
        self.min_replicas, self.max_replicas = min_replicas, max_replicas
        self.behavior = behavior
        self.downscale_window_s = downscale_window_s
        self.scale_up_limit_factor = scale_up_limit_factor
        self.recommendations: list[tuple[float, int]] | None = None  # None until the first sync
        self.up_events: list[tuple[float, int]] = []
        self.down_events: list[tuple[float, int]] = []

    def reconcile(self, now_s: float, current: int, proposals: list[int | None]) -> int:
        """One sync: the replica count the controller sets, from each metric's proposal
        (None for a metric that could not be computed)."""
        if self.recommendations is None:
            self.recommendations = [(now_s, current)]  # recordInitialRecommendation
        if current == 0 and self.min_replicas != 0:
            return 0  # autoscaling is disabled for this resource
        if current > self.max_replicas:
            desired = self.max_replicas
        elif current < self.min_replicas:
            desired = self.min_replicas
        else:
            valid = [p for p in proposals if p is not None]
            # Every metric failed, or some failed and the rest would scale down: no change.
            if (proposals and not valid) or (len(valid) < len(proposals) and max(valid) < current):
                return current
            proposal = max(valid, default=0)
            if self.behavior is None:
                desired = self.limit_without_behavior(current, self.stabilize(now_s, proposal))
            else:
                stabilized = self.stabilize_with_behavior(now_s, current, proposal)
                desired = self.limit_with_behavior(now_s, current, stabilized)
        if desired != current:
            self._store_event(now_s, current, desired)
        return desired

    # -- without behavior ---------------------------------------------------------------

    def limit_without_behavior(self, current: int, desired: int) -> int:
        """Within [minReplicas, min(maxReplicas, max(factor x current, 4))]: convertDesiredReplicasWithRules."""
        high = min(self.max_replicas, int(max(self.scale_up_limit_factor * current, SCALE_UP_LIMIT_MINIMUM)))
        return min(max(desired, self.min_replicas), high)

    def stabilize(self, now_s: float, proposal: int) -> int:
        """The highest recommendation of the downscale window; this one replaces an expired one
        (stabilizeRecommendation, the path without behavior)."""
        if self.recommendations is None:
            self.recommendations = []
        cutoff = now_s - self.downscale_window_s
        highest, old = proposal, None
        for i, (at, replicas) in enumerate(self.recommendations):
            if at < cutoff:
                old = i
            elif replicas > highest:
                highest = replicas
        self._record(now_s, proposal, old)
        return highest

    # -- with behavior ------------------------------------------------------------------

    def limit_with_behavior(self, now_s: float, current: int, stabilized: int) -> int:
        """The policies' limit in the direction of change: convertDesiredReplicasWithBehaviorRate."""
        assert self.behavior is not None
        up, down = self.behavior
        if stabilized > current:
            limit = max(scale_up_limit(current, self.up_events, self.down_events, up, now_s), current)
            return min(stabilized, self.max_replicas, limit)
        if stabilized < current:
            limit = min(scale_down_limit(current, self.up_events, self.down_events, down, now_s), current)
            return max(stabilized, self.min_replicas, limit)
        return stabilized

    def stabilize_with_behavior(self, now_s: float, current: int, proposal: int) -> int:
        """Between the lowest recommendation of the scale-up window and the highest of the
        scale-down window: stabilizeRecommendationWithBehaviors."""
        assert self.behavior is not None
        if self.recommendations is None:
            self.recommendations = []
        up, down = self.behavior
        up_cutoff, down_cutoff = now_s - up.stabilization_window_s, now_s - down.stabilization_window_s
        obsolete = now_s - max(up.stabilization_window_s, down.stabilization_window_s)
        lowest_up, highest_down, old = proposal, proposal, None
        for i, (at, replicas) in enumerate(self.recommendations):
            if at > up_cutoff:
                lowest_up = min(replicas, lowest_up)
            if at > down_cutoff:
                highest_down = max(replicas, highest_down)
            if at < obsolete:
                old = i
        self._record(now_s, proposal, old)
        return min(max(current, lowest_up), highest_down)

    def _record(self, now_s: float, proposal: int, replace: int | None) -> None:
        assert self.recommendations is not None
        if replace is None:
            self.recommendations.append((now_s, proposal))
        else:
            self.recommendations[replace] = (now_s, proposal)

    def _store_event(self, now_s: float, current: int, desired: int) -> None:
        """Scale events, kept only with behavior; events older than the longest period are dropped."""
        if self.behavior is None:
            return
        up, down = self.behavior
        if desired > current:
            longest = max((p.period_s for p in up.policies), default=0.0)
            self.up_events = [(at, n) for at, n in self.up_events if at > now_s - longest] + [(now_s, desired - current)]
        else:
            longest = max((p.period_s for p in down.policies), default=0.0)
            self.down_events = [(at, n) for at, n in self.down_events if at > now_s - longest] + [(now_s, current - desired)]
