"""Several scenarios in one Locust run (`--scenarios`): their users, their gates, the pools Locust spawns.

Locust runs one shape for all its users; a run of several scenarios gives each its own.
Every scenario's User classes become classes of their own (`checkout.Buyer`), so Locust
counts them apart and the recorder knows each request's scenario from its user's class.
Locust spawns each class's pool up front (its `fixed_count`: a closed scenario's peak, a
rate scenario's pool, which grows as its arrivals need), spread evenly over the workers
(`EvenDispatcher`), and never stops a user during the run. Instead:

- a closed scenario's users pass a `Gate` before each iteration: as many may run as its
  shape says now (`users_at`, from its start on, at its spawn rate); the others wait, and a
  user over the count finishes its iteration (task and wait) before it waits, as k6's
  ramping VUs do. `on_start` runs when a user is first let through.
- a rate scenario's users take arrivals from its own plan (`loadwise.engine.arrivals`),
  which starts at the scenario's start.

The local runner (or the master) follows the clock: every FOLLOW_EVERY_S it sets each
class's gate (a master splits it over its workers by the users each holds and sends each
worker its share, GATES_MESSAGE). Each scenario has its own Recorder, so its intervals,
iterations and statistics are its own.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import gevent.event
import locust
from locust.dispatch import UsersDispatcher
from locust.user.users import LOCUST_STATE_WAITING

from loadwise.engine.open_model import OpenModel, seeded, shape_of_plan
from loadwise.engine.recorder import Recorder
from loadwise.engine.shape import LoadwiseShape
from loadwise.scenarios.plan import Scenario, duration_s, seats, split
from loadwise.shapes.rates import RateShape

log = logging.getLogger("loadwise")

GATES_MESSAGE = "loadwise_gates"  # master -> worker: how many users of each class may run now
FOLLOW_EVERY_S = 0.25
POOL_SPAWN_RATE = 100.0  # users per second while the pools are spawned (Locust warns above 100 per worker)


class Gate:
    """How many users of one User class may run iterations now, in this process."""

    def __init__(self) -> None:
        self.target = 0
        self.active = 0
        self._open = gevent.event.Event()

    def set(self, target: int) -> None:
        self.target = target
        if self.active < target:
            self._open.set()

    def hold(self, user: Any) -> None:
        """Return once `user` may run its next iteration (at once if it runs and the count allows)."""
        if getattr(user, "_loadwise_active", False):
            if self.active <= self.target:
                return
            user._loadwise_active = False
            self.active -= 1
        state, user._state = user._state, LOCUST_STATE_WAITING  # a waiting user stops at once, even with --stop-timeout
        try:
            while self.active >= self.target:
                self._open.clear()
                self._open.wait()
        finally:
            user._state = state
        self.active += 1
        user._loadwise_active = True

    def leave(self, user: Any) -> None:
        if getattr(user, "_loadwise_active", False):
            user._loadwise_active = False
            self.active -= 1


def _gate(user: Any) -> Gate:
    gates = getattr(user.environment, "loadwise_gates", None)
    if gates is None:
        raise RuntimeError("a scenario's user runs without loadwise's gates (is the loadwise plugin loaded?)")
    return gates[type(user).__name__]


def scenario_class(scenario: Scenario, user_class: type) -> type:
    """`user_class` as one of `scenario`'s: named `SCENARIO.CLASS`, gated (closed) or on the scenario's arrivals (rate)."""
    name = f"{scenario.name}.{user_class.__name__}"
    namespace: dict[str, Any] = {"__module__": user_class.__module__, "__qualname__": name, "__doc__": user_class.__doc__,
                                 "_loadwise_scenario": scenario.name, "fixed_count": 0}  # fmt: skip
    if scenario.open_model:
        from loadwise.engine.arrivals import as_open_model

        return as_open_model(type(name, (user_class,), namespace))

    def on_start(self: Any) -> None:
        _gate(self).hold(self)  # a user starts when it is first let in, not when Locust spawns it
        self._loadwise_started = True
        user_class.on_start(self)

    def on_stop(self: Any) -> None:
        if getattr(self, "_loadwise_started", False):
            user_class.on_stop(self)
        _gate(self).leave(self)

    def wait_time(self: Any) -> float:
        gevent.sleep(user_class.wait_time(self))
        _gate(self).hold(self)  # after its whole iteration (task and wait): ramping down never cuts one short
        return 0.0

    namespace |= {"on_start": on_start, "on_stop": on_stop, "wait_time": wait_time}
    return type(name, (user_class,), namespace)


class EvenDispatcher(UsersDispatcher):
    """Locust's dispatcher, but each class's users go to the worker holding fewest of that class
    (Locust's cycles the workers whatever the class, so two scenarios of two users each on two
    workers would put one scenario on each), and pools grown since the last dispatch are spawned."""

    def new_dispatch(self, target_user_count: int, spawn_rate: float, user_classes: Any = None) -> None:
        super().new_dispatch(target_user_count, spawn_rate, user_classes)
        self._try_dispatch_fixed = True  # a pool (fixed_count) may have grown
        self._user_generator = self._user_gen()

    def _add_users_on_workers(self) -> dict[str, dict[str, int]]:
        target = min(self._current_user_count + self._user_count_per_dispatch_iteration, self._target_user_count)
        for user in self._user_generator:
            if not user:
                self._no_user_to_spawn = True
                break
            on = self._users_on_workers
            node = min(self._worker_nodes, key=lambda w: (on[w.id].get(user, 0), sum(on[w.id].values()), w.id))
            on[node.id][user] = on[node.id].get(user, 0) + 1
            self._current_user_count += 1
            self._active_users.append((node, user))
            if self._current_user_count >= target:
                break
        return self._users_on_workers


class ScenariosShape(LoadwiseShape):
    """Locust's shape for a run of several scenarios: the pools to spawn, until the last scenario ends.
    `loadwise.engine.entry` subclasses it with the run's `scenarios`."""

    scenarios: tuple[Scenario, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.mix: Mix | None = None

    def tick(self) -> tuple[int, float] | None:
        if self.mix is None:
            raise RuntimeError("the scenarios' shape was not configured (is the loadwise plugin loaded?)")
        if self.get_run_time() >= duration_s(list(self.scenarios)):
            self.finished = True
            return None
        return self.mix.apply_pools(), POOL_SPAWN_RATE


class Mix:
    """One Locust process's part in a run of several scenarios."""

    def __init__(self, env: Any, scenarios: list[Scenario], interval_s: float, role: str):
        self.env, self.role = env, role  # role: local, master or worker
        self.scenarios = scenarios
        self.classes: dict[str, list[type]] = {s.name: [] for s in scenarios}
        for user_class in env.user_classes:
            self.classes[user_class._loadwise_scenario].append(user_class)
        self.recorders = {s.name: Recorder(interval_s, scenario=s.name) for s in scenarios}
        self.recorder_of = {c: self.recorders[name] for name, classes in self.classes.items() for c in classes}
        self.gates = {c.__name__: Gate() for s in scenarios if not s.open_model for c in self.classes[s.name]}
        env.loadwise_gates = self.gates
        env.loadwise_scenario_arrivals = {}
        self.open_models: dict[str, OpenModel] = {}
        if role != "worker":
            for s in scenarios:
                if isinstance(s.shape, RateShape):
                    shape = seeded(s.shape)
                    self.open_models[s.name] = self._open_model(s.name, shape)
        self.t0: float | None = None
        self.targets = {s.name: 0.0 for s in scenarios}  # closed: active users now, moving at the spawn rate
        self.sent: dict[str, dict[str, int]] = {}  # master: what each worker was last told
        self.follower: Any = None
        if role != "worker":
            env.dispatcher_class = EvenDispatcher

    def _open_model(self, name: str, shape: RateShape) -> OpenModel:
        model = OpenModel(self.env, self.recorders[name], shape, scenario=name)
        model.classes = {c.__name__ for c in self.classes[name]}
        return model

    def weights(self, scenario: Scenario) -> dict[str, float]:
        return {c.__name__: float(c.weight) for c in self.classes[scenario.name]}

    def apply_pools(self) -> int:
        """Set each class's pool (its fixed_count) for Locust's dispatcher; the users in all pools."""
        for s in self.scenarios:
            if s.open_model:
                model = self.open_models[s.name]
                size = model.pool(self.role == "master")[0]
            else:
                size = s.shape.users
            pools = seats(size, self.weights(s))
            for user_class in self.classes[s.name]:
                user_class.fixed_count = pools[user_class.__name__]
        return sum(c.fixed_count for classes in self.classes.values() for c in classes)

    # -- the clock (a local runner, or the master) ------------------------------------

    def start(self, t0: float) -> None:
        self.t0 = t0
        for s in self.scenarios:
            if s.name in self.open_models:
                self.open_models[s.name].start(t0 + s.start_s, self.role == "master")
        self.follower = gevent.spawn(self._follow)

    def _follow(self) -> None:
        last = time.time()
        while True:
            now = time.time()
            self.follow(now, now - last)
            last = now
            gevent.sleep(FOLLOW_EVERY_S)

    def follow(self, now: float, dt: float) -> None:
        """Set every closed scenario's gates for `now` (`dt`: seconds since the last time)."""
        assert self.t0 is not None
        t = now - self.t0
        wanted: dict[str, int] = {}
        for s in self.scenarios:
            if s.open_model:
                continue
            goal = s.users_at(t)
            current = self.targets[s.name]
            # Up at the shape's spawn rate (as Locust would spawn them), down at once.
            self.targets[s.name] = goal if goal <= current else min(goal, current + s.shape.users_per_s() * dt)
            wanted |= seats(int(self.targets[s.name]), self.weights(s))
        if self.role == "local":
            for name, n in wanted.items():
                self.gates[name].set(n)
            return
        self._send(wanted)

    def _send(self, wanted: dict[str, int]) -> None:
        runner = self.env.runner
        workers = {c.id: c for c in runner.clients.all if c.state != locust.runners.STATE_MISSING}
        shares: dict[str, dict[str, int]] = {w: {} for w in workers}
        for name, n in wanted.items():
            for worker, k in split(n, {w: int(c.user_classes_count.get(name, 0)) for w, c in workers.items()}).items():
                shares[worker][name] = k
        for worker, share in shares.items():
            if self.sent.get(worker) != share:
                runner.send_message(GATES_MESSAGE, share, worker)
                self.sent[worker] = share

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.kill(block=False)
            self.follower = None
        for model in self.open_models.values():
            model.arrivals.stop()

    # -- a worker -----------------------------------------------------------------------

    def on_gates_message(self, environment: Any, msg: Any, **_: Any) -> None:
        for name, n in (msg.data or {}).items():
            if name in self.gates:
                self.gates[name].set(int(n))

    def follow_plan(self, plan: dict[str, Any]) -> None:
        """A worker: the master's plan for one rate scenario."""
        name = plan["scenario"]
        shape = shape_of_plan(plan)
        model = self.open_models.get(name)
        if model is None or model.shape != shape:
            model = self.open_models[name] = self._open_model(name, shape)
        model.follow(plan)

    def report(self, data: dict[str, Any], stopped: bool) -> None:
        """A worker's report: each scenario's recorder, and what each rate scenario needs."""
        parts = {}
        for name, recorder in self.recorders.items():
            part: dict[str, Any] = {}
            if name in self.open_models:
                self.open_models[name].report(part, stopped)
            part["recorder"] = recorder.drain()
            parts[name] = part
        data["loadwise_scenarios"] = parts

    def absorb(self, client_id: str, data: dict[str, Any]) -> int:
        """The master: a worker's report; the requests it carried."""
        carried = 0
        for name, part in (data.get("loadwise_scenarios") or {}).items():
            if name not in self.recorders:
                continue
            carried += self.recorders[name].absorb(part.get("recorder") or {})
            if name in self.open_models:
                self.open_models[name].absorb(client_id, part)
        return carried

    # -- what the run records ---------------------------------------------------------

    def users(self) -> dict[str, int]:
        """Each scenario's active users now: a closed one's let through its gates, a rate one's pool."""
        runner = self.env.runner
        by_class = runner.reported_user_classes_count if self.role == "master" else runner.user_classes_count
        counts = {}
        for s in self.scenarios:
            names = [c.__name__ for c in self.classes[s.name]]
            if s.open_model:
                counts[s.name] = sum(int(by_class.get(n, 0)) for n in names)
            elif self.role == "master":
                counts[s.name] = sum(share.get(n, 0) for share in self.sent.values() for n in names)
            else:
                counts[s.name] = sum(self.gates[n].active for n in names)
        return counts

    def records(self) -> list[dict[str, Any]]:
        """run.json's `scenarios`: each one's plan, its classes with their pools, its open model."""
        out = []
        for s in self.scenarios:
            record = s.to_dict()
            if s.name in self.open_models:
                record["params"] = self.open_models[s.name].shape.params()  # with the seed drawn
                record["open_model"] = self.open_models[s.name].record()
            record["classes"] = [{"name": c.__name__, "weight": c.weight, "pool": c.fixed_count} for c in self.classes[s.name]]
            out.append(record)
        return out
