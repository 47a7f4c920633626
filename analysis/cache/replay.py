"""A key stream replayed against a real Redis holding a given number of entries: the hit ratio
the replay's own lookups found (each GET's answer, counted by the replay), to set beside the
exact-LRU curve's.

Redis evicts by sampling a few keys (maxmemory-samples), not by exact LRU, and bounds memory
in bytes, not entries: the replay sizes maxmemory from the memory one entry takes on this
Redis (measured first) and counts the entries Redis really kept, so two gaps show apart: the
sizing's (entries kept against entries meant) and the eviction's (the hit ratio against the
exact-LRU curve's at the size kept).

What it does to the server at `url`:
- It refuses a server holding keys in any database: maxmemory and the eviction policy are
  server-wide, so keys in another database could be evicted too. It warns when other clients
  are connected: they share the memory, and keys they write may be evicted and count in the
  entries held.
- It changes `maxmemory` and `maxmemory-policy` for the replay and puts both back afterwards,
  first in its clean-up, also after an error or Ctrl-C; a setting it could not put back is a
  warning on stderr naming the setting and the value to set back by hand. (Before measuring,
  it also sets maxmemory to the value it already has: see _warm_up.)
- It writes keys into the URL's database (a warm-up key, a probe of at most PROBE_ENTRIES
  entries and PROBE_BYTES, never past a maxmemory already set, then the replay's keys:
  `lw-fill:*` and `lw-replay:KEY`) and deletes exactly those keys afterwards, the probe's
  before the replay: never FLUSHDB or FLUSHALL.
- It loads one Lua script (left in the script cache: SCRIPT FLUSH would drop other clients').
- It does not reset the server's statistics; `evicted` is the server's evicted_keys counter's
  rise over the replay, so another client's evictions would count in it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from loadwise.analysis.cache.advise import CacheAdvisorError
from loadwise.analysis.redact import redact

if TYPE_CHECKING:
    import redis
    from redis.commands.core import Script

DEFAULT_VALUE_BYTES = 100  # a trace without sizes: small values, so memory counts entries
# Commands per round trip. Each script runs whole and in order, so the stream stays sequential;
# a round trip's commands wait in Redis's query buffer, which counts against maxmemory, so few.
BATCH = 50
DELETE_BATCH = 1_000  # keys per DEL in the clean-up
# One lookup: 1 when the GET found the key (a hit), else 0 after storing the entry (a miss).
_LOOKUP = "if redis.call('GET', KEYS[1]) then return 1 end redis.call('SET', KEYS[1], ARGV[1]) return 0"
_SETTINGS = ("maxmemory", "maxmemory-policy")  # what the replay changes, in the order it puts them back

PROBE_ENTRIES = 5_000  # enough entries that one entry's share of Redis's memory is not lost in its jitter
PROBE_BYTES = 64 * 2**20  # large entries: fewer of them, so the probe never takes more memory than this
# An upper bound on what Redis adds to a key and its value (dict entry, object and string headers)
# and on the allocator's rounding (jemalloc's size classes round up by at most a quarter): the
# probe's byte cap must hold on the real footprint, not on the values' sizes alone.
_ENTRY_OVERHEAD = 96
_ROUNDING = 1.25


@dataclass
class Replay:
    requests: int
    entries: int  # the cache size replayed, in entries of this trace
    maxmemory: int  # bytes, as set for the replay
    bytes_per_entry: float  # measured on this Redis before the replay
    policy: str
    samples: int  # maxmemory-samples: how many keys Redis compares per eviction
    hits: int
    misses: int
    evicted: int
    held: float  # entries Redis kept, on average over the replay's second half: the size it really had

    @property
    def hit_ratio(self) -> float | None:
        return self.hits / (self.hits + self.misses) if self.hits + self.misses else None


def replay(trace: pd.DataFrame, url: str, entries: int, policy: str = "allkeys-lru") -> Replay:
    """Replay `trace` (timestamp, key[, size], in order) against the Redis at `url` sized for
    `entries`. The server must hold no key in any database; see the module's docstring for
    what the replay changes on it and how it puts it back."""
    import redis

    if entries < 1:
        raise CacheAdvisorError("the cache to replay holds no entry")
    where = f"Redis at {redact(url)}"
    keys = [f"lw-replay:{k}" for k in trace["key"].astype(str)]
    written: set[str] = set()  # every key name this replay may have written: the clean-up deletes these only
    try:
        client = _connect(url, timeout=30)
        _refuse_keys(client, where, policy)
        _warn_other_clients(client, where)
        saved = {name: str(client.config_get(name)[name]) for name in _SETTINGS}
        try:
            return _replay(client, trace, keys, entries, policy, saved, written, where)
        except BaseException:
            # An interrupted round trip can leave its replies unread on the socket; the clean-up
            # must not read them as its own answers.
            client.connection_pool.disconnect()
            raise
        finally:
            _restore(client, url, saved, where)
            _delete(client, url, written, where)
    except redis.exceptions.OutOfMemoryError:
        raise CacheAdvisorError(f"{where}: the maxmemory for {entries} entries is below what Redis "
                                "itself takes: too small a cache to replay in bytes") from None
    except redis.RedisError as exc:
        raise CacheAdvisorError(f"{where}: {_first_line(exc)}") from None


def _connect(url: str, timeout: float) -> redis.Redis:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: a replay batch retried after a lost connection would run its lookups twice
    # (the second time finding the keys the first stored), and a clean-up retrying a dead
    # server would hold up Ctrl-C for seconds per command.
    return redis.Redis.from_url(url, socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _warn(where: str, message: str) -> None:
    print(f"warning: {where}: {message}", file=sys.stderr)


def _refuse_keys(client: redis.Redis, where: str, policy: str) -> None:
    """DBSIZE counts the URL's database only; maxmemory and the policy evict across all of them."""
    held = {db: int(stats.get("keys", 0)) for db, stats in client.info("keyspace").items() if isinstance(stats, dict)}
    held = {db: count for db, count in held.items() if count}
    if held:
        listing = ", ".join(f"{db} {count}" for db, count in sorted(held.items()))
        raise CacheAdvisorError(f"{where} holds keys ({listing}): the replay's maxmemory and {policy} are server-wide "
                                "and could evict them, so give it an empty (throwaway) Redis")  # fmt: skip


def _warn_other_clients(client: redis.Redis, where: str) -> None:
    others = int(client.info("clients").get("connected_clients", 1)) - 1  # this connection counts itself
    if others > 0:
        _warn(where, f"{others} other client(s) connected: they share its memory during the replay (the entries "
                     "kept may be off) and keys they write may be evicted")  # fmt: skip


def _values(trace: pd.DataFrame) -> list[bytes]:
    if "size" in trace.columns and trace["size"].notna().any():
        sizes = trace["size"].fillna(trace["size"].mean()).clip(lower=1).astype(int)
        return [b"x" * int(n) for n in sizes]
    return [b"x" * DEFAULT_VALUE_BYTES] * len(trace)


def _in_batches(client: redis.Redis, items: list[str], size: int,
                queue: Callable[[redis.client.Pipeline, str], object]) -> None:  # fmt: skip
    for start in range(0, len(items), size):
        pipe = client.pipeline(transaction=False)
        for item in items[start : start + size]:
            queue(pipe, item)
        pipe.execute()


def _probe_count(key_bytes: int, value_bytes: int, used_memory: int, maxmemory: int, where: str) -> int:
    """How many probe entries fit PROBE_BYTES and, when a maxmemory is set, half the memory it
    leaves free: the probe must not reach it, where Redis would evict or refuse writes."""
    budget = PROBE_BYTES if not maxmemory else min(PROBE_BYTES, (maxmemory - used_memory) // 2)
    footprint = (key_bytes + value_bytes) * _ROUNDING + _ENTRY_OVERHEAD
    count = min(PROBE_ENTRIES, int(budget // footprint)) if budget > 0 else 0
    if count < 1:
        raise CacheAdvisorError(f"{where}: one entry of about {footprint:.0f} bytes does not fit the memory probe's "
                                f"{max(budget, 0)} bytes (at most {PROBE_BYTES // 2**20} MiB and half what maxmemory "
                                "leaves free)")  # fmt: skip
    return count


def _bytes_per_entry(client: redis.Redis, key_bytes: int, value: bytes, maxmemory: int, written: set[str],
                     where: str) -> float:  # fmt: skip
    """What one entry of `value`'s size, under a key of `key_bytes`, adds to Redis's memory, over
    up to PROBE_ENTRIES of them. The key's length counts too: the allocator rounds it up by size
    class, so keys of 12 and of 38 bytes differ by 32 bytes an entry, a sixth of a small entry."""
    baseline = int(client.info("memory")["used_memory"])
    width = max(len(str(PROBE_ENTRIES)), key_bytes - len("lw-fill:"))
    count = _probe_count(len("lw-fill:") + width, len(value), baseline, maxmemory, where)
    probe = [f"lw-fill:{i:0{width}d}" for i in range(count)]
    written.update(probe)
    _in_batches(client, probe, BATCH, lambda pipe, key: pipe.set(key, value))
    per_entry = (int(client.info("memory")["used_memory"]) - baseline) / count
    _in_batches(client, probe, DELETE_BATCH, lambda pipe, key: pipe.delete(key))
    written.difference_update(probe)
    _settle(client)
    return per_entry


def _settle(client: redis.Redis) -> None:
    """Wait until Redis has given back what the probe's deleted keys held: its key table shrinks
    in its cron (every 1/hz s), not at DEL, and the replay's baseline must not count it as room."""
    period = 1 / max(1, int(client.config_get("hz").get("hz", 10)))
    lowest = int(client.info("memory")["used_memory"])
    quiet_since = start = time.monotonic()
    while time.monotonic() - quiet_since < 2.5 * period and time.monotonic() - start < 20 * period:
        time.sleep(period / 2)
        used = int(client.info("memory")["used_memory"])
        if used < lowest:
            lowest, quiet_since = used, time.monotonic()


def _warm_up(client: redis.Redis, lookup: Script, saved: dict[str, str], written: set[str]) -> None:
    """Every command the replay sends, once before the baseline is measured. Redis allocates a
    latency histogram (about 25 kB) for each command the first time it runs: Redis's own memory,
    which would otherwise come out of a small cache's maxmemory."""
    key = "lw-fill:warm-up"
    written.add(key)
    pipe = client.pipeline(transaction=False)
    # One byte: what room a maxmemory already set leaves is checked by the probe, after this.
    lookup(keys=[key], args=[b"x"], client=pipe)  # with its SCRIPT EXISTS, and the script's GET and SET
    pipe.dbsize()
    pipe.execute()
    client.delete(key)
    client.config_set("maxmemory", saved["maxmemory"])  # the value it has: changes nothing
    client.config_get("maxmemory-samples")
    client.info("stats")


def _replay(client: redis.Redis, trace: pd.DataFrame, keys: list[str], entries: int, policy: str, saved: dict[str, str],
            written: set[str], where: str) -> Replay:  # fmt: skip
    import redis

    values = _values(trace)
    typical = b"x" * max(1, round(sum(map(len, values)) / len(values)))
    lookup = client.register_script(_LOOKUP)
    try:
        _warm_up(client, lookup, saved, written)
    except redis.exceptions.OutOfMemoryError:
        raise CacheAdvisorError(f"{where} is at its maxmemory ({saved['maxmemory']} bytes): no room to measure an "
                                "entry's memory") from None  # fmt: skip
    key_bytes = round(sum(len(k.encode()) for k in keys) / len(keys))
    per_entry = _bytes_per_entry(client, key_bytes, typical, int(saved["maxmemory"]), written, where)
    # Redis bounds bytes: for a small cache its own memory's jitter is many entries, so the size
    # it really keeps is counted below and the hit ratio judged at that size (verify.cache_checks).
    maxmemory = int(int(client.info("memory")["used_memory"]) + entries * per_entry)
    client.config_set("maxmemory", str(maxmemory))
    client.config_set("maxmemory-policy", policy)
    samples = int(client.config_get("maxmemory-samples").get("maxmemory-samples", 5))
    evicted_before = int(client.info("stats").get("evicted_keys", 0))
    written.update(keys)
    hits, held = 0, []
    for start in range(0, len(keys), BATCH):
        pipe = client.pipeline(transaction=False)
        for key, value in zip(keys[start : start + BATCH], values[start : start + BATCH]):
            lookup(keys=[key], args=[value], client=pipe)
        pipe.dbsize()
        *found, size = pipe.execute()
        # The scripts' own answers: the server's keyspace_hits and misses count every client's lookups.
        hits += sum(int(f) for f in found)
        held.append(size)
    evicted = int(client.info("stats").get("evicted_keys", 0)) - evicted_before
    steady = held[len(held) // 2 :] or held  # once the cache has filled
    return Replay(len(keys), entries, maxmemory, per_entry, policy, samples, hits, len(keys) - hits, evicted,
                  sum(steady) / len(steady))  # fmt: skip


def _on_either(client: redis.Redis, url: str, action: Callable[[redis.Redis], None]) -> None:
    """`action` on the replay's client, else once more on a fresh connection: the first may be
    what broke. The second attempt's error is raised."""
    import redis

    try:
        action(client)
        return
    except redis.RedisError:
        pass
    fresh = _connect(url, timeout=10)
    try:
        action(fresh)
    finally:
        fresh.close()


def _restore(client: redis.Redis, url: str, saved: dict[str, str], where: str) -> None:
    """Each setting put back on its own, so one that fails does not keep the others from being
    put back; each one not confirmed (a failure, or a second Ctrl-C) is a warning naming it."""
    import redis

    def put_back(name: str, value: str) -> Callable[[redis.Redis], None]:
        def action(c: redis.Redis) -> None:
            c.config_set(name, value)
            # Read back: an answer misread on a broken connection must not pass for success.
            now = str(c.config_get(name).get(name))
            if now != value:
                raise redis.RedisError(f"it reads {now!r} after CONFIG SET")

        return action

    pending = dict(saved)
    try:
        for name, value in saved.items():
            try:
                _on_either(client, url, put_back(name, value))
            except redis.RedisError as exc:
                _warn(where, f"could not set {name} back to {value} ({_first_line(exc)}): run "
                             f"`CONFIG SET {name} {value}` on it by hand")  # fmt: skip
            del pending[name]
    finally:
        for name, value in pending.items():
            _warn(where, f"{name} not set back to {value} (interrupted): run `CONFIG SET {name} {value}` on it by hand")


def _delete(client: redis.Redis, url: str, written: Iterable[str], where: str) -> None:
    """The replay's own keys, by name: a key another client wrote meanwhile is not the replay's to delete."""
    import redis

    names = sorted(written)
    if not names:
        return
    left = "they are named lw-replay:* and lw-fill:* in its database"
    try:
        _on_either(client, url, lambda c: _in_batches(c, names, DELETE_BATCH, lambda pipe, key: pipe.delete(key)))
    except redis.RedisError as exc:
        _warn(where, f"could not delete the replay's {len(names)} keys ({_first_line(exc)}): {left}")
    except KeyboardInterrupt:
        _warn(where, f"the replay's keys not all deleted (interrupted): {left}")
        raise
