"""The ADK adapter on every backend: the scenarios of ADK's own session-service tests,
concurrency (tasks and processes), a real ``Runner`` loop, and a restart."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import pytest
from google.adk.agents import LlmAgent
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.runners import Runner
from google.adk.sessions import BaseSessionService
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from sessionstore.adk import SessionStoreSessionService
from tests.adapters.scripted import adk_model, run_processes

APP, USER = "my-app", "u1"


@pytest.fixture
def adk(store) -> SessionStoreSessionService:
    return SessionStoreSessionService(store)


def text_event(text: str, author: str = "user", **fields) -> Event:
    return Event(
        author=author, invocation_id="inv-1",
        content=types.Content(role="user" if author == "user" else "model", parts=[types.Part(text=text)]), **fields,
    )


def rich_event() -> Event:
    """An event with every kind of field ADK has: parts of each type, actions, metadata."""
    return Event(
        invocation_id="inv-7", author="agent", branch="root.sub",
        content=types.Content(role="model", parts=[
            types.Part(text="hello"),
            types.Part(inline_data=types.Blob(mime_type="image/png", data=b"\x89PNG\x00\xff")),
            types.Part(function_call=types.FunctionCall(id="fc1", name="lookup", args={"q": "x", "n": [1, 2.5, None]})),
            types.Part(function_response=types.FunctionResponse(id="fc1", name="lookup", response={"ok": True})),
        ]),
        actions=EventActions(
            state_delta={"k": {"nested": [1, "two"]}, "app:flag": True, "user:lang": "fr"},
            artifact_delta={"report.txt": 2}, transfer_to_agent="helper", escalate=False, skip_summarization=True,
        ),
        grounding_metadata=types.GroundingMetadata(web_search_queries=["weather paris"]),
        usage_metadata=types.GenerateContentResponseUsageMetadata(prompt_token_count=11, candidates_token_count=7),
        custom_metadata={"trace": {"id": "t-1"}, "score": 0.5},
        long_running_tool_ids={"fc1", "fc0"},
        error_code=None, turn_complete=True,
        timestamp=1_767_225_600.123456789,
    )


async def test_it_is_a_real_adk_session_service(adk):
    assert isinstance(adk, BaseSessionService)


async def test_create_get_and_state_scopes(adk):
    s = await adk.create_session(app_name=APP, user_id=USER, state={"a": 1, "app:b": 2, "user:c": 3, "temp:d": 4})
    assert s.id and s.state == {"a": 1, "app:b": 2, "user:c": 3}
    got = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id)
    assert got.state == {"a": 1, "app:b": 2, "user:c": 3} and got.events == []
    other_session = await adk.create_session(app_name=APP, user_id=USER, session_id="s2")
    assert other_session.state == {"app:b": 2, "user:c": 3}  # user: follows the user, app: the app
    other_user = await adk.create_session(app_name=APP, user_id="u2")
    assert other_user.state == {"app:b": 2}
    other_app = await adk.create_session(app_name="other-app", user_id=USER)
    assert other_app.state == {}
    assert await adk.get_user_state(app_name=APP, user_id=USER) == {"c": 3}
    assert await adk.get_user_state(app_name=APP, user_id="nobody") == {}


async def test_create_with_a_taken_id_raises_adks_error_and_get_of_a_missing_one_is_none(adk):
    await adk.create_session(app_name=APP, user_id=USER, session_id="s1")
    with pytest.raises(AlreadyExistsError):
        await adk.create_session(app_name=APP, user_id=USER, session_id="s1")
    assert await adk.get_session(app_name=APP, user_id=USER, session_id="missing") is None
    assert await adk.get_session(app_name=APP, user_id="u2", session_id="s1") is None  # isolation by user
    assert await adk.get_session(app_name="other", user_id=USER, session_id="s1") is None  # and by app


async def test_every_field_of_an_event_round_trips(adk):
    s = await adk.create_session(app_name=APP, user_id=USER)
    event = rich_event()
    event.id = Event.new_id()
    expected = event.model_dump()
    await adk.append_event(s, event)
    got = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id)
    assert len(got.events) == 1
    assert got.events[0].model_dump() == expected
    assert got.events[0].content.parts[1].inline_data.data == b"\x89PNG\x00\xff"
    assert got.events[0].timestamp == 1_767_225_600.123456789
    assert got.state == {"k": {"nested": [1, "two"]}, "app:flag": True, "user:lang": "fr"}


async def test_temp_state_stays_on_the_callers_object_and_is_trimmed_from_the_stored_event(adk):
    s = await adk.create_session(app_name=APP, user_id=USER)
    event = text_event("hi", actions=EventActions(state_delta={"temp:scratch": 1, "x": 2}))
    await adk.append_event(s, event)
    assert s.state == {"temp:scratch": 1, "x": 2}
    assert event.actions.state_delta == {"x": 2}
    got = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id)
    assert got.state == {"x": 2} and got.events[0].actions.state_delta == {"x": 2}


async def test_partial_events_are_not_stored(adk):
    s = await adk.create_session(app_name=APP, user_id=USER)
    partial = text_event("thinking…", author="agent", partial=True, actions=EventActions(state_delta={"x": 1}))
    assert await adk.append_event(s, partial) is partial
    got = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id)
    assert got.events == [] and got.state == {} and s.events == []


async def test_get_session_config_filters(adk):
    s = await adk.create_session(app_name=APP, user_id=USER)
    base = time.time()
    for i in range(5):
        await adk.append_event(s, text_event(f"m{i}", timestamp=base + i + 0.25))

    async def texts(**config):
        got = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id, config=GetSessionConfig(**config))
        return [e.content.parts[0].text for e in got.events]

    assert await texts(num_recent_events=2) == ["m3", "m4"]
    assert await texts(num_recent_events=0) == []
    assert await texts(after_timestamp=base + 2.25) == ["m2", "m3", "m4"]  # >=, at the exact float
    assert await texts(after_timestamp=base + 2.251) == ["m3", "m4"]
    assert await texts(after_timestamp=base + 1, num_recent_events=2) == ["m3", "m4"]
    with pytest.raises(ValueError):
        GetSessionConfig(num_recent_events=-1)


async def test_events_read_back_in_append_order(adk):
    s = await adk.create_session(app_name=APP, user_id=USER)
    for i, ts in enumerate([300.0, 100.0, 200.0]):  # client timestamps out of order
        await adk.append_event(s, text_event(f"m{i}", timestamp=1_767_225_600 + ts))
    got = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id)
    assert [e.content.parts[0].text for e in got.events] == ["m0", "m1", "m2"]
    assert [e.id for e in got.events] == [e.id for e in s.events]


async def test_append_to_a_missing_session_raises_adks_error(adk):
    s = await adk.create_session(app_name=APP, user_id=USER, session_id="gone")
    await adk.delete_session(app_name=APP, user_id=USER, session_id="gone")
    with pytest.raises(SessionNotFoundError):
        await adk.append_event(s, text_event("hi"))
    await adk.delete_session(app_name=APP, user_id=USER, session_id="gone")  # deleting twice is a no-op


async def test_last_update_time_is_the_last_write(adk):
    s = await adk.create_session(app_name=APP, user_id=USER)
    created = s.last_update_time
    assert abs(created - time.time()) < 60
    await asyncio.sleep(0.01)
    await adk.append_event(s, text_event("hi"))
    assert s.last_update_time > created
    got = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id)
    assert got.last_update_time == pytest.approx(s.last_update_time, abs=1e-6)


async def test_list_sessions_of_a_user_and_of_every_user(adk):
    first = await adk.create_session(app_name=APP, user_id=USER, session_id="a", state={"k": 1, "user:u": 2})
    await asyncio.sleep(0.01)
    await adk.create_session(app_name=APP, user_id=USER, session_id="b")
    await asyncio.sleep(0.01)
    await adk.create_session(app_name=APP, user_id="u2", session_id="c")
    await adk.create_session(app_name="other-app", user_id=USER, session_id="d")
    await asyncio.sleep(0.01)
    await adk.append_event(first, text_event("hi"))  # now the most recently updated

    mine = (await adk.list_sessions(app_name=APP, user_id=USER)).sessions
    assert [s.id for s in mine] == ["b", "a"]  # oldest update first, as ADK orders them
    assert all(s.events == [] for s in mine)
    assert mine[1].state == {"k": 1, "user:u": 2}
    everyone = (await adk.list_sessions(app_name=APP)).sessions
    assert [(s.user_id, s.id) for s in everyone] == [(USER, "b"), ("u2", "c"), (USER, "a")]
    assert (await adk.list_sessions(app_name=APP, user_id="nobody")).sessions == []


async def test_two_loaded_copies_appending_at_once_both_land(adk):
    await adk.create_session(app_name=APP, user_id=USER, session_id="s")
    one = await adk.get_session(app_name=APP, user_id=USER, session_id="s")
    two = await adk.get_session(app_name=APP, user_id=USER, session_id="s")
    await asyncio.gather(*(
        adk.append_event(copy, text_event(f"{n}-{i}", actions=EventActions(state_delta={f"{n}-{i}": i})))
        for i in range(10) for n, copy in (("one", one), ("two", two))
    ))
    got = await adk.get_session(app_name=APP, user_id=USER, session_id="s")
    assert len(got.events) == 20 and len(got.state) == 20


async def test_strict_mode_raises_stale_session_error_like_adk(store):
    adk = SessionStoreSessionService(store, strict=True)
    await adk.create_session(app_name=APP, user_id=USER, session_id="s")
    one = await adk.get_session(app_name=APP, user_id=USER, session_id="s")
    two = await adk.get_session(app_name=APP, user_id=USER, session_id="s")
    await adk.append_event(one, text_event("first"))
    await adk.append_event(one, text_event("second"))  # its own writes keep it current
    with pytest.raises(StaleSessionError):
        await adk.append_event(two, text_event("stale", actions=EventActions(state_delta={"lost": 1})))
    got = await adk.get_session(app_name=APP, user_id=USER, session_id="s")
    assert [e.content.parts[0].text for e in got.events] == ["first", "second"] and got.state == {}
    made_by_hand = got.model_copy(deep=True)  # a copy the adapter never saw (no version known)
    fresh = await adk.get_session(app_name=APP, user_id=USER, session_id="s")
    await adk.append_event(fresh, text_event("after reload"))
    # one object's own concurrent appends are serialised, as ADK does, so they never conflict
    await asyncio.gather(*(adk.append_event(fresh, text_event(f"own {i}")) for i in range(5)))
    got = await adk.get_session(app_name=APP, user_id=USER, session_id="s")
    assert len(got.events) == 8
    # an object the adapter never loaded: ADK's fallback check on the newest event
    with pytest.raises(StaleSessionError):
        await adk.append_event(made_by_hand, text_event("stale too"))


async def test_a_retried_event_is_stored_once(adk):
    s = await adk.create_session(app_name=APP, user_id=USER)
    event = text_event("once")
    event.id = Event.new_id()
    await adk.append_event(s, event)
    again = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id)
    await adk.append_event(again, event.model_copy(deep=True))
    got = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id)
    assert len(got.events) == 1 and len(again.events) == 1


async def test_bad_input_gets_a_value_error_and_stores_nothing(adk):
    with pytest.raises(ValueError):
        await adk.create_session(app_name="", user_id=USER)
    with pytest.raises(ValueError):
        await adk.create_session(app_name=APP, user_id="x" * 200)
    assert (await adk.list_sessions(app_name=APP)).sessions == []


async def test_a_runner_turn_and_its_history_after_a_restart(store, backend):
    """ADK's Runner with a scripted model (a tool call, then an answer) through the adapter."""
    adk = SessionStoreSessionService(store)

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    model = adk_model([types.Part(function_call=types.FunctionCall(name="add", args={"a": 2, "b": 3})), "It is 5."])
    agent = LlmAgent(name="calc", model=model, tools=[add], instruction="Add.", output_key="answer")
    runner = Runner(app_name=APP, agent=agent, session_service=adk)
    s = await adk.create_session(app_name=APP, user_id=USER, state={"user:name": "Ann"})
    message = types.Content(role="user", parts=[types.Part(text="2+3?")])
    seen = [e async for e in runner.run_async(user_id=USER, session_id=s.id, new_message=message)]
    got = await adk.get_session(app_name=APP, user_id=USER, session_id=s.id)
    assert [e.author for e in got.events] == ["user", "calc", "calc", "calc"]
    assert got.events[1].content.parts[0].function_call.name == "add"
    assert got.events[2].content.parts[0].function_response.response == {"result": 5}
    assert got.events[3].usage_metadata.prompt_token_count == 3
    assert got.state == {"answer": "It is 5.", "user:name": "Ann"}
    assert [e.id for e in got.events][1:] == [e.id for e in seen if not e.partial][-3:]
    if backend.name == "memory":
        return
    [out] = await run_processes(["adk-read", backend.url, APP, USER, s.id])
    restarted = json.loads(out)
    assert restarted["events"] == [e.model_dump(mode="json", exclude_none=True) for e in got.events]
    assert restarted["state"] == got.state


async def test_two_processes_appending_through_stale_copies_lose_nothing(adk, durable_url):
    await adk.create_session(app_name=APP, user_id=USER, session_id="shared")
    await run_processes(
        ["adk-append", durable_url, APP, USER, "shared", "15", "p1"],
        ["adk-append", durable_url, APP, USER, "shared", "15", "p2"],
    )
    got = await adk.get_session(app_name=APP, user_id=USER, session_id="shared")
    assert sorted(e.invocation_id for e in got.events) == sorted(f"p{p}-{i}" for p in (1, 2) for i in range(15))
    assert len(got.state) == 30


def test_without_adk_the_import_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "sessionstore.adk" or m.startswith("sessionstore.adk.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "google.adk", None)  # what a missing package looks like to import
    with pytest.raises(ImportError, match=r"pip install 'sessionstore\[adk\]'"):
        import sessionstore.adk  # noqa: F401
