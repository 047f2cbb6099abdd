"""The Agents SDK adapter on every backend: the scenarios of the SDK's own session tests,
concurrency (tasks and processes), a real ``Runner`` turn, and a restart."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.memory import SessionSettings
from agents.memory.session import Session as SdkSession

from sessionstore import Key
from sessionstore.openai_agents import SessionStoreSession
from tests.adapters.scripted import agents_model, run_processes

set_tracing_disabled(True)  # no trace export: the tests have no network

ITEMS = [
    {"role": "user", "content": "What's the weather in Paris?"},
    {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city": "Paris"}', "id": "fc_1"},
    {"type": "function_call_output", "call_id": "c1", "output": "sunny, 21°C"},
    {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "Sunny, 21°C.", "annotations": []}]},
]


@pytest.fixture
def session(store) -> SessionStoreSession:
    return SessionStoreSession("conv-1", store)


async def test_it_satisfies_the_sdks_session_protocol(session):
    assert isinstance(session, SdkSession)
    assert session.session_id == "conv-1"


async def test_add_get_limit_and_exact_round_trip(session):
    assert await session.get_items() == []
    await session.add_items(ITEMS)
    assert await session.get_items() == ITEMS
    assert await session.get_items(limit=2) == ITEMS[2:]
    assert await session.get_items(limit=0) == []
    await session.add_items([])  # nothing to do
    assert len(await session.get_items()) == 4


async def test_session_settings_limit_is_the_default(store):
    session = SessionStoreSession("conv-s", store, session_settings=SessionSettings(limit=3))
    await session.add_items(ITEMS)
    assert await session.get_items() == ITEMS[1:]
    assert await session.get_items(limit=1) == ITEMS[3:]


async def test_pop_item_and_clear_session(session):
    assert await session.pop_item() is None
    await session.add_items(ITEMS)
    assert await session.pop_item() == ITEMS[3]
    assert await session.pop_item() == ITEMS[2]
    assert await session.get_items() == ITEMS[:2]
    await session.clear_session()
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.add_items(ITEMS[:1])  # usable after a clear
    assert await session.get_items() == ITEMS[:1]


async def test_sessions_are_isolated_by_id_user_and_app(store):
    a = SessionStoreSession("same", store)
    b = SessionStoreSession("other", store)
    c = SessionStoreSession("same", store, user_id="someone-else")
    d = SessionStoreSession("same", store, app_name="another-app")
    await a.add_items(ITEMS[:1])
    assert await a.get_items() == ITEMS[:1]
    assert [await s.get_items() for s in (b, c, d)] == [[], [], []]
    await c.clear_session()
    assert await a.get_items() == ITEMS[:1]


async def test_a_batch_is_atomic_and_concurrent_batches_do_not_interleave(session, store):
    too_big = [{"role": "user", "content": "ok"}, {"role": "user", "content": "x" * 2_000_000}]
    with pytest.raises(ValueError):
        await session.add_items(too_big)
    assert await session.get_items() == []  # the first item was not stored either

    batches = [[{"role": "user", "content": f"{b}-{i}"} for i in range(5)] for b in range(8)]
    await asyncio.gather(*(session.add_items(batch) for batch in batches))
    items = await session.get_items()
    assert len(items) == 40
    for start in range(0, 40, 5):  # each batch contiguous and in order
        chunk = [item["content"] for item in items[start:start + 5]]
        b = chunk[0].split("-")[0]
        assert chunk == [f"{b}-{i}" for i in range(5)]


async def test_concurrent_pops_return_each_item_once(session):
    await session.add_items([{"role": "user", "content": str(i)} for i in range(10)])
    popped = await asyncio.gather(*(session.pop_item() for _ in range(12)))
    got = [p["content"] for p in popped if p is not None]
    assert sorted(got, key=int) == [str(i) for i in range(10)]
    assert await session.get_items() == []


async def test_items_are_sessionstore_events(session, store):
    await session.add_items(ITEMS)
    stored = await store.get_session(Key("openai-agents", "default", "conv-1"))
    assert [e.author for e in stored.events] == ["user", "function_call", "function_call_output", "assistant"]
    assert [e.seq for e in stored.events] == [1, 2, 3, 4]


async def test_bad_items_are_refused(session):
    with pytest.raises(ValueError):
        await session.add_items(["not a dict"])
    with pytest.raises(ValueError):
        await session.get_items(limit=-1)


async def test_a_runner_turn_and_its_history_after_a_restart(store, backend):
    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    session = SessionStoreSession("run-1", store)
    agent = Agent(name="calc", model=agents_model([("add", '{"a": 2, "b": 3}'), "It is 5."]), tools=[add])
    result = await Runner.run(agent, "2+3?", session=session)
    assert result.final_output == "It is 5."
    items = await session.get_items()
    assert [i.get("type", "message") for i in items] == ["message", "function_call", "function_call_output", "message"]
    assert items[0] == {"content": "2+3?", "role": "user"} and items[2]["output"] == "5"

    second = await Runner.run(agent, "and again?", session=session)  # the next turn sees the history
    assert second.final_output == "(script exhausted)"
    assert len(await session.get_items()) == 6
    if backend.name == "memory":
        return
    [out] = await run_processes(["agents-read", backend.url, "run-1"])
    assert json.loads(out) == await session.get_items()


async def test_two_processes_adding_batches_lose_nothing(durable_url):
    await run_processes(["agents-add", durable_url, "shared", "10", "p1"], ["agents-add", durable_url, "shared", "10", "p2"])
    session = SessionStoreSession("shared", durable_url)
    try:
        items = await session.get_items()
    finally:
        await session.close()
    assert len(items) == 40
    pairs = list(zip(items[::2], items[1::2], strict=False))
    assert all(a["content"][:-2] == b["content"][:-2] for a, b in pairs)  # each batch stayed together


def test_without_the_sdk_the_import_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("sessionstore.openai_agents")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "agents", None)
    with pytest.raises(ImportError, match=r"pip install 'sessionstore\[openai-agents\]'"):
        import sessionstore.openai_agents  # noqa: F401
