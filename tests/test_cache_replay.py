"""The cache replay on a real Redis (a redis-server of each test's own on 127.0.0.1): what it
refuses, what it changes on the server and puts back (also after Ctrl-C or a lost
connection), how much its memory probe writes, and whose lookups its hit ratio counts."""

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
import redis
from redis.client import Pipeline

from loadwise.analysis.cache import replay as replay_module
from loadwise.analysis.cache.advise import CacheAdvisorError
from loadwise.analysis.cache.replay import PROBE_BYTES, replay

Hook = Callable[[int, Any, list], None]


@pytest.fixture
def redis_server() -> Iterator[Any]:
    """Like conftest's fresh_redis, but the server itself: a test can stop it mid-replay."""
    from services import Redis

    server = Redis().start()
    yield server
    server.stop()


@pytest.fixture
def on_batch(monkeypatch: pytest.MonkeyPatch) -> Callable[[Hook], None]:
    """on_batch(hook): hook(n, connection, commands) runs before the replay's n-th round trip of
    lookups (1-based) is sent; it may raise, as a Ctrl-C or a lost connection would there."""

    def install(hook: Hook) -> None:
        original = Pipeline._execute_pipeline
        count = 0

        def execute(self: Pipeline, connection: Any, commands: list, raise_on_error: bool) -> list:
            nonlocal count
            if any(args[0] == "EVALSHA" for args, _ in commands):
                count += 1
                hook(count, connection, commands)
            return original(self, connection, commands, raise_on_error)

        monkeypatch.setattr(Pipeline, "_execute_pipeline", execute)

    return install


def trace(keys: list[object], size: int | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"timestamp": [i * 0.001 for i in range(len(keys))], "key": [str(k) for k in keys]})
    if size is not None:
        frame["size"] = size
    return frame


def cycling(requests: int, distinct: int, size: int | None = None) -> pd.DataFrame:
    """`distinct` keys in turn: with room for all of them, every lookup after the first round hits."""
    return trace([i % distinct for i in range(requests)], size)


def client_of(url: str, db: int = 0) -> redis.Redis:
    """A client of the test's own; the URL names database 0, and its path would win over db=."""
    return redis.Redis.from_url(f"{url.rsplit('/', 1)[0]}/{db}", decode_responses=True)


def settings(client: redis.Redis) -> tuple[str, str]:
    return client.config_get("maxmemory")["maxmemory"], client.config_get("maxmemory-policy")["maxmemory-policy"]


def given_settings(url: str, maxmemory: str, policy: str) -> tuple[str, str]:
    """The server's settings as a user left them, before the replay; read back as Redis writes them."""
    client = client_of(url)
    client.config_set("maxmemory", maxmemory)
    client.config_set("maxmemory-policy", policy)
    found = settings(client)
    client.close()  # not another client during the replay
    return found


def test_keys_in_another_database_refuse_the_replay_and_stay(fresh_redis):
    """The URL's database (0) is empty, database 3 is not: maxmemory and the policy are
    server-wide, so the replay could evict db 3's keys. One line naming the db, nothing changed."""
    other = client_of(fresh_redis, db=3)
    other.set("theirs", "kept")
    other.close()
    with pytest.raises(CacheAdvisorError) as raised:
        replay(cycling(500, 50), fresh_redis, 100)
    message = str(raised.value)
    assert "\n" not in message and "db3 1" in message and "empty" in message, message
    client = client_of(fresh_redis, db=3)
    assert client.get("theirs") == "kept"
    assert settings(client) == ("0", "noeviction")


def test_the_hit_ratio_counts_the_replays_own_lookups_not_other_clients(fresh_redis, on_batch):
    """100 keys in turn, 2,000 lookups, room for all: exactly 100 misses. Another client's
    lookups between the replay's round trips move Redis's keyspace_misses, not the replay's
    count; and the server's statistics are not reset (they were someone else's too)."""
    noise = client_of(fresh_redis)
    for _ in range(300):
        noise.get("absent")
    before = int(noise.info("stats")["keyspace_misses"])

    def lookups_by_another_client(n: int, connection: Any, commands: list) -> None:
        pipe = noise.pipeline(transaction=False)
        for _ in range(200):
            pipe.get("absent")
        pipe.execute()

    on_batch(lookups_by_another_client)
    result = replay(cycling(2_000, 100), fresh_redis, 500)
    assert (result.requests, result.hits, result.misses) == (2_000, 1_900, 100)
    assert result.hit_ratio == pytest.approx(0.95)
    assert result.held == pytest.approx(100)
    assert int(noise.info("stats")["keyspace_misses"]) >= before + 100 + 200 * (2_000 // 50)


def test_ctrl_c_during_the_replay_puts_the_settings_back_and_deletes_its_keys(fresh_redis, on_batch):
    """Ctrl-C while a round trip's replies are still unread: the clean-up reads nothing of them,
    puts the user's maxmemory and policy back, deletes the replay's keys, and lets Ctrl-C through."""
    found = given_settings(fresh_redis, "300mb", "volatile-lru")

    def ctrl_c_awaiting_replies(n: int, connection: Any, commands: list) -> None:
        if n == 5:
            connection.send_packed_command(connection.pack_commands([args for args, _ in commands]))
            raise KeyboardInterrupt

    on_batch(ctrl_c_awaiting_replies)
    with pytest.raises(KeyboardInterrupt):
        replay(cycling(2_000, 100), fresh_redis, 500)
    client = client_of(fresh_redis)
    assert settings(client) == found == ("314572800", "volatile-lru")
    assert client.info("keyspace") == {}


def test_a_broken_connection_is_put_back_through_a_fresh_one(fresh_redis, on_batch, monkeypatch, capsys):
    """The replay's connection lost mid-replay and its client unusable after: the settings go
    back and the keys go away through a new connection, with no warning (nothing left to do)."""
    found = given_settings(fresh_redis, "300mb", "volatile-lru")
    clients: list[redis.Redis] = []
    connect = replay_module._connect

    def recorded(url: str, timeout: float) -> redis.Redis:
        clients.append(connect(url, timeout))
        return clients[-1]

    def broken(*_: object, **__: object) -> None:
        raise redis.ConnectionError("no connection to be had")

    def connection_lost(n: int, connection: Any, commands: list) -> None:
        if n == 3:
            monkeypatch.setattr(clients[0].connection_pool, "get_connection", broken)
            raise redis.ConnectionError("connection lost")

    monkeypatch.setattr(replay_module, "_connect", recorded)
    on_batch(connection_lost)
    with pytest.raises(CacheAdvisorError, match="connection lost"):
        replay(cycling(2_000, 100), fresh_redis, 500)
    client = client_of(fresh_redis)
    assert settings(client) == found and client.info("keyspace") == {}
    assert len(clients) > 1 and capsys.readouterr().err == ""


def test_settings_that_cannot_be_put_back_are_warnings_naming_them(redis_server, on_batch, capsys):
    """The server gone mid-replay: each setting is tried on its own, and each one not put back
    is a warning with the value to set by hand; the replay's error still says what happened."""
    given_settings(redis_server.url, "300mb", "volatile-lru")

    def server_gone(n: int, connection: Any, commands: list) -> None:
        if n == 3:
            redis_server.stop()

    on_batch(server_gone)
    with pytest.raises(CacheAdvisorError):
        replay(cycling(2_000, 100), redis_server.url, 500)
    err = capsys.readouterr().err
    assert "could not set maxmemory back to 314572800" in err, err
    assert "could not set maxmemory-policy back to volatile-lru" in err, err
    assert "CONFIG SET maxmemory 314572800" in err and "CONFIG SET maxmemory-policy volatile-lru" in err, err


def test_the_probe_of_large_entries_stays_under_its_byte_cap(fresh_redis):
    """Entries of 40 kB: 5,000 of them would be 200 MB; the probe writes fewer, so Redis's peak
    stays under PROBE_BYTES above where it started, and neither probe nor replay keys remain."""
    client = client_of(fresh_redis)
    start = int(client.info("memory")["used_memory"])
    client.close()
    result = replay(cycling(200, 40, size=40_000), fresh_redis, 20)
    assert result.bytes_per_entry > 40_000 and result.held <= 40  # no probe key held during the replay
    client = client_of(fresh_redis)
    assert int(client.info("memory")["used_memory_peak"]) - start < PROBE_BYTES
    assert client.info("keyspace") == {} and settings(client) == ("0", "noeviction")


def test_the_probe_never_reaches_a_maxmemory_already_set(fresh_redis):
    """A user's maxmemory of 32 MB under noeviction, entries of 10 kB: the probe (and the replay)
    stay below it, where Redis would refuse the probe's writes, and it is left as it was."""
    found = given_settings(fresh_redis, "32mb", "noeviction")
    result = replay(cycling(200, 40, size=10_000), fresh_redis, 20)
    assert result.bytes_per_entry > 10_000
    client = client_of(fresh_redis)
    assert int(client.info("memory")["used_memory_peak"]) < 32 * 2**20
    assert settings(client) == found and client.info("keyspace") == {}


def test_a_maxmemory_with_no_room_for_one_probe_entry_is_refused(fresh_redis):
    """A maxmemory 400 kB above what Redis takes and entries of 1 MB: not even one probe entry
    fits half the room left, so a one-line error, and the settings left as they were."""
    client = client_of(fresh_redis)
    used = int(client.info("memory")["used_memory"])
    client.close()
    found = given_settings(fresh_redis, str(used + 400_000), "noeviction")
    with pytest.raises(CacheAdvisorError, match="does not fit the memory probe") as raised:
        replay(cycling(100, 10, size=1_000_000), fresh_redis, 5)
    assert "\n" not in str(raised.value)
    client = client_of(fresh_redis)
    assert settings(client) == found and client.info("keyspace") == {}


def test_another_connected_client_is_one_warning_line(fresh_redis, capsys):
    """Alone on the server: nothing on stderr. With another client connected: one warning line."""
    replay(cycling(500, 50), fresh_redis, 100)
    assert capsys.readouterr().err == ""
    other = client_of(fresh_redis)
    other.ping()
    replay(cycling(500, 50), fresh_redis, 100)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and "1 other client" in lines[0], lines


def test_only_the_replays_own_keys_are_deleted(fresh_redis, on_batch):
    """A key another client writes during the replay (in the replay's database, with room for
    every key so nothing is evicted) is still there after: the clean-up deletes by name."""
    other = client_of(fresh_redis)

    def another_client_writes(n: int, connection: Any, commands: list) -> None:
        if n == 10:
            other.set("theirs", "kept")

    on_batch(another_client_writes)
    replay(cycling(2_000, 100), fresh_redis, 500)
    assert other.get("theirs") == "kept"
    assert other.dbsize() == 1
