"""Redis-specific behaviour: URLs and options, the key layout (keys and their cluster slots),
typed errors with the URL redacted, the extra named when redis-py is missing, and the cleanup lock.
(tests/contract/ runs the whole contract on Redis and Redis Cluster; test_redis_faults.py restarts a server.)"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

import sessionstore as ss
from sessionstore.redis import RedisSessionService
from sessionstore.redis.layout import KeyLayout, escape
from tests.backends import RedisBackend

from .contract.helpers import APP, event, key, new_session, user_key

PASSWORD = "s3cr3t-pw"


# ---------------------------------------------------------------------------- URLs and options


@pytest.mark.parametrize(
    "url, cluster",
    [("redis://127.0.0.1:6379/0", False), ("rediss://127.0.0.1:6380/0", False),
     ("redis+cluster://127.0.0.1:7000", True), ("REDIS://127.0.0.1/1", False)],
)
def test_redis_urls_open_the_redis_backend(url: str, cluster: bool) -> None:
    svc = ss.open_service(url)
    assert isinstance(svc, RedisSessionService) and svc.is_cluster is cluster


def test_cluster_true_makes_a_cluster_client_from_a_plain_url() -> None:
    svc = ss.open_service("redis://127.0.0.1:7000", cluster=True)
    assert isinstance(svc, RedisSessionService) and svc.is_cluster


def test_the_key_prefix_can_ride_in_the_url() -> None:
    """A URL alone can name one deployment's keys (handed to another process, a CLI, an adapter)."""
    svc = ss.open_service("redis://127.0.0.1:6379/0?key_prefix=run7:")
    assert isinstance(svc, RedisSessionService) and svc.layout.prefix == "run7:"
    same = ss.open_service("redis://127.0.0.1:6379/0?key_prefix=run7:", key_prefix="run7:")
    assert isinstance(same, RedisSessionService) and same.layout.prefix == "run7:"


@pytest.mark.parametrize("url, options", [
    ("redis://127.0.0.1:6379/0?key_prefix=a:", {"key_prefix": "b:"}),
    ("redis://127.0.0.1:6379/0?key_prefix=a:&key_prefix=b:", {}),
])
def test_a_key_prefix_given_twice_differently_is_refused(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ss.ConfigurationError, match="key_prefix"):
        ss.open_service(url, **options)


@pytest.mark.parametrize("options", [{"bogus": 1}, {"pool_size": 0}, {"pool_timeout": -1}, {"key_prefix": 5}])
def test_bad_options_raise_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ss.ConfigurationError):
        ss.open_service("redis://127.0.0.1:6379/0", **options)


def test_a_missing_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)  # what an environment without redis-py gives
    with pytest.raises(ss.ConfigurationError, match=r"sessionstore\[redis\]"):
        ss.open_service("redis://127.0.0.1:6379/0")


async def test_connection_errors_are_typed_and_never_show_the_password() -> None:
    from tests.private_servers import free_port

    url = f"redis://user:{PASSWORD}@127.0.0.1:{free_port()}/0"
    svc = ss.open_service(url, cleanup_interval=None)
    try:
        with pytest.raises(ss.DatabaseError) as raised:
            await svc.get_session(key("s1"))
    finally:
        await svc.close()
    text = str(raised.value)
    assert PASSWORD not in text and PASSWORD not in repr(raised.value) and "***" in text
    assert not isinstance(raised.value, ss.OutcomeUnknownError)  # nothing was sent


# ---------------------------------------------------------------------------- key layout


def test_ids_cannot_break_out_of_the_hash_tag() -> None:
    layout = KeyLayout("p:")
    keys = layout.session_keys("a{}:%", "u}x", "s:1}")
    assert keys[0] == "p:{u:a%7B%7D%3A%25:u%7Dx}:s:s%3A1%7D"
    assert all(k.startswith("p:{u:a%7B%7D%3A%25:u%7Dx}:") for k in keys)
    assert escape("plain-id_1.x") == "plain-id_1.x"
    assert layout.tag_of(keys[0]) == "p:{u:a%7B%7D%3A%25:u%7Dx}:"


async def test_one_users_keys_share_a_slot_and_app_state_has_its_own(make_redis, redis_backend, clock) -> None:
    """Inspect what a few writes leave in Redis: every key of one user in one slot (CLUSTER KEYSLOT),
    app state in the app's slot, nothing outside the run's prefix."""
    svc = await make_redis(session_ttl=None)
    tricky_user = "u{1}:x"
    s = await new_session(svc, "s1", user=tricky_user, state={"k": 1, "app:a": 1, "user:u": 1})
    await svc.append_event(s, event(content="hi", state_delta={"k": 2}))
    await new_session(svc, "s2", user=tricky_user)
    await svc.delete_session(key("s2", user=tricky_user))  # a tombstone (soft delete)
    await new_session(svc, "other", user="u2")

    client = redis_backend.client
    prefix = redis_backend.prefix
    found = sorted([k.decode() async for k in client.scan_iter(match=prefix + "*")])
    base = svc.layout.user_base(APP, tricky_user)
    mine = sorted(k for k in found if k.startswith(base))
    assert mine == sorted(base + suffix for suffix in (
        "s:s1", "st:s1", "ev:s1", "ei:s1", "idx", "user", "tombs", "n", "ts:1",
    ))
    app_keys = [k for k in found if k.startswith(svc.layout.app_base(APP))]
    assert app_keys == [svc.layout.app_base(APP) + "idx", svc.layout.app_base(APP) + "state"]

    slot_of = await _slot_function(redis_backend)
    assert len({await slot_of(k) for k in mine}) == 1
    assert len({await slot_of(k) for k in found if k.startswith(svc.layout.user_base(APP, "u2"))}) == 1


async def _slot_function(backend: RedisBackend) -> Any:
    """CLUSTER KEYSLOT on the cluster; on a standalone server the same CRC16 computed by redis-py."""
    if backend.name == "redis-cluster":
        return lambda k: backend.client.execute_command("CLUSTER KEYSLOT", k)
    from redis.cluster import key_slot

    async def slot(k: str) -> int:
        return int(key_slot(k.encode()))

    return slot


async def test_events_are_a_sorted_set_by_seq_and_trimmed_on_write(make_redis, redis_backend) -> None:
    svc = await make_redis(event_limit=3)
    s = await new_session(svc, "s1")
    for i in range(5):
        await svc.append_event(s, event(id=f"e{i}", content=i))
    ev, ei = svc.layout.session_keys(APP, "u1", "s1")[2:4]
    scored = await redis_backend.client.zrange(ev, 0, -1, withscores=True)
    assert [int(score) for _, score in scored] == [3, 4, 5]
    assert sorted(k.decode() for k in await redis_backend.client.hkeys(ei)) == ["e2", "e3", "e4"]
    # a trimmed event id is not a duplicate any more: it is stored again, with the next seq
    assert (await svc.append_event(s, event(id="e0", content="again"))).seq == 6


async def test_session_ttl_becomes_native_expiry_sliding_on_write(make_redis, redis_backend, clock) -> None:
    from datetime import timedelta

    svc = await make_redis(session_ttl=timedelta(minutes=10), soft_delete=False)
    s = await new_session(svc, "s1", state={"k": 1})
    await svc.append_event(s, event())
    client = redis_backend.client
    session_key = svc.layout.session_keys(APP, "u1", "s1")[0]
    ttl_ms = await client.pttl(session_key)
    assert 10 * 60_000 < ttl_ms <= 11 * 60_000  # the TTL plus one minute's grace
    await client.pexpire(session_key, 5_000)
    await svc.update_session_state(key("s1"), {"k": 2})  # a write slides it again
    assert await client.pttl(session_key) > 10 * 60_000


# ---------------------------------------------------------------------------- cleanup lock


async def test_a_held_cleanup_lock_skips_the_round(make_redis, redis_backend, clock) -> None:
    from datetime import timedelta

    svc = await make_redis(session_ttl=timedelta(minutes=10), soft_delete=False)
    await new_session(svc, "s1")
    clock.advance(minutes=11)
    client = redis_backend.client
    assert await client.set(svc.layout.lock_key, "someone-else", nx=True, px=60_000)
    try:
        skipped = await svc.cleanup()
        assert skipped.skipped and skipped.total == 0
    finally:
        await client.delete(svc.layout.lock_key)
    done = await svc.cleanup()
    assert not done.skipped and done.sessions_expired == 1
    assert await client.get(svc.layout.lock_key) is None  # released


async def test_concurrent_rounds_one_cleans_the_others_skip(make_redis, clock) -> None:
    from datetime import timedelta

    services = [await make_redis(session_ttl=timedelta(minutes=10)) for _ in range(3)]
    for i in range(20):
        await new_session(services[0], f"s{i}", user=f"u{i % 4}")
    clock.advance(minutes=11)
    results = await asyncio.gather(*(s.cleanup() for s in services))
    assert sum(r.sessions_expired for r in results) == 20
    assert sum(not r.skipped for r in results) >= 1
    assert (await services[0].list_sessions(user_key("u0"))).sessions == []
