"""The open model's part in one Locust process: its share of the plan, the user pool it asks
Locust for, and what run.json says about it (the generator's own verdict).

`loadwise.engine.plugin` holds one `OpenModel` when the shape is a rate shape: a local
runner schedules the whole plan; a master sends each worker its share (`ARRIVALS_MESSAGE`)
and sizes the pool from what its workers report they need; a worker builds its own
`OpenModel` when the master's plan arrives (`loadwise.engine.distributed`). The rate
shapes' options are in `loadwise.engine.options`.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import locust

from loadwise.engine.arrivals import Arrivals
from loadwise.engine.recorder import Recorder
from loadwise.shapes.catalog import SHAPES
from loadwise.settings import GENERATOR_LATE_SHARE
from loadwise.shapes.rates import RateShape

ARRIVALS_MESSAGE = "loadwise_arrivals"  # master -> worker: your share of the open-model plan


def seeded(shape: RateShape) -> RateShape:
    """The shape with a seed (a random one unless given): recorded, so the arrivals can be drawn again."""
    return shape if shape.seed is not None else dataclasses.replace(shape, seed=random.randrange(2**31))


def shape_of_plan(plan: dict[str, Any]) -> RateShape:
    """The rate shape a master's plan names (KeyError, TypeError or ShapeError when it names none)."""
    shape = SHAPES[plan["shape"]](**plan["params"])
    if not isinstance(shape, RateShape):
        raise TypeError(f"{plan['shape']} is not a rate shape")
    return shape


class OpenModel:
    """One process's open model: its arrivals (their recorder counts), and on a master the
    users each worker needs."""

    def __init__(self, env: Any, recorder: Recorder, shape: RateShape, scenario: str = ""):
        self.env = env
        self.arrivals = Arrivals(shape, recorder)
        self.recorder = recorder
        self.scenario = scenario  # in a run of several scenarios (loadwise.engine.mix), the one it paces
        self.worker_demand: dict[str, int] = {}
        self.classes: set[str] | None = None  # a scenario's: its users are those of its classes (not the run's)
        if scenario:  # open-model users find their arrivals here (a scenario's users: by its name)
            env.loadwise_scenario_arrivals[scenario] = self.arrivals
        else:
            env.loadwise_arrivals = self.arrivals
        recorder.measure_intended()

    @property
    def shape(self) -> RateShape:
        return self.arrivals.shape

    def start(self, t0: float, master: bool) -> None:
        """Local: schedule the whole plan. Master: give each connected worker its share of it."""
        if not master:
            self.arrivals.start(t0)
            return
        runner = self.env.runner
        clients = sorted(c.id for c in runner.clients.all if c.state != locust.runners.STATE_MISSING)
        for share, client_id in enumerate(clients):
            plan = {"shape": self.shape.name, "params": self.shape.params(), "t0": t0, "share": share, "of": len(clients),
                    "seed": self.shape.seed, **({"scenario": self.scenario} if self.scenario else {})}  # fmt: skip
            runner.send_message(ARRIVALS_MESSAGE, plan, client_id)

    def follow(self, plan: dict[str, Any]) -> None:
        """A worker: schedule the share of the master's plan it was given."""
        self.arrivals.start(float(plan["t0"]), int(plan["share"]), int(plan["of"]), plan.get("seed"))

    def user_count(self) -> int:
        """The users of this open model in this process (a scenario's: those of its classes)."""
        runner = self.env.runner
        if self.classes is None:
            return runner.user_count
        return sum(n for name, n in runner.user_classes_count.items() if name in self.classes)

    def pool(self, master: bool) -> tuple[int, float]:
        """The pool of users the arrivals need now (a master sums its workers' needs), and the spawn rate."""
        demand = sum(self.worker_demand.values()) if master else self.arrivals.demand(self.user_count())
        return self.arrivals.pool_target(demand), self.arrivals.spawn_rate()

    def report(self, data: dict[str, Any], stopped: bool) -> None:
        """A worker's report to the master: what it needs; once stopped, its waiting arrivals are dropped."""
        if stopped:
            self.arrivals.stop()
        data["loadwise_demand"] = self.arrivals.demand(self.user_count())

    def absorb(self, client_id: str, data: dict[str, Any]) -> None:
        if "loadwise_demand" in data:
            self.worker_demand[client_id] = int(data["loadwise_demand"])

    def _generator_late_share(self) -> float:
        totals = self.recorder.iteration_totals
        return totals["generator_late"] / totals["scheduled"] if totals["scheduled"] else 0.0

    def status(self) -> dict[str, int]:
        """The live line's counts; the generator's late arrivals only once they pass GENERATOR_LATE_SHARE."""
        totals = self.recorder.iteration_totals
        busy = self._generator_late_share() > GENERATOR_LATE_SHARE
        return {"late": totals["late"], "dropped": totals["dropped"], "generator_late": totals["generator_late"] if busy else 0}

    def record(self) -> dict[str, Any]:
        """run.json's `open_model`: iteration totals, the plan, and the generator's own verdict."""
        totals = dict(self.recorder.iteration_totals)
        runner = self.env.runner
        cpu_warned = bool(runner.cpu_warning_emitted or getattr(runner, "worker_cpu_warning_emitted", False))
        late_share = self._generator_late_share()
        evidence = (f"{totals['generator_late']} of {totals['scheduled']} arrivals ({late_share:.1%}) were scheduled late by "
                    f"the load generator itself" + ("; Locust warned that a generator's CPU was above 90 %" if cpu_warned else ""))  # fmt: skip
        return {
            **totals,
            "planned": round(self.shape.planned(), 3),
            "max_lateness_s": self.shape.max_lateness_s,
            "seed": self.arrivals.seed,
            "generator": {"saturated": cpu_warned or late_share > GENERATOR_LATE_SHARE, "late_share": round(late_share, 6),
                          "cpu_warning": cpu_warned, "evidence": evidence},  # fmt: skip
        }
