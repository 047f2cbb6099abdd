"""Session tools for LLMs: schemas, the executor, and hostile arguments that must reach nothing else."""

from __future__ import annotations

import json

import pytest

from sessionstore import Event, Key, UserKey
from sessionstore.agent import SESSION_TOOL_DEFINITIONS, SessionTools, ToolCall

APP = "chat-app"


def call(name: str, arguments: object = None, raw: str | None = None) -> ToolCall:
    return ToolCall("call_1", name, raw if raw is not None else json.dumps(arguments or {}))


@pytest.fixture
async def world(make_service):
    """u1 owns 'mine' (current) and 'other-of-u1'; u2 owns 'secret'; app 'other-app' has u1/'mine' too."""
    svc = await make_service()
    for key in (Key(APP, "u1", "mine"), Key(APP, "u1", "other-of-u1"), Key(APP, "u2", "secret"), Key("other-app", "u1", "mine")):
        session = await svc.create_session(key)
        await svc.append_event(session, Event(author="user", content={"text": f"hello from {key.user_id}/{key.session_id}"}))
    await svc.set_session_metadata(Key(APP, "u2", "secret"), title="u2's secret", metadata={"pin": 1234})
    return svc, SessionTools(svc, APP).for_user("u1", "mine")


async def untouched(svc) -> None:
    """Nothing of u2 or of the other app changed."""
    secret = await svc.get_session(Key(APP, "u2", "secret"))
    assert secret is not None and len(secret.events) == 1 and secret.title == "u2's secret" and secret.metadata == {"pin": 1234}
    other = await svc.get_session(Key("other-app", "u1", "mine"))
    assert other is not None and len(other.events) == 1 and other.title is None and other.metadata == {}


def test_the_definitions_are_openai_function_tools() -> None:
    names = [d["function"]["name"] for d in SESSION_TOOL_DEFINITIONS]
    assert names == ["sessions_list", "sessions_history", "sessions_get", "sessions_clear", "sessions_delete",
                     "sessions_metadata_set", "sessions_metadata_get"]
    for d in SESSION_TOOL_DEFINITIONS:
        assert d["type"] == "function" and d["function"]["parameters"]["type"] == "object"
        assert d["function"]["parameters"]["additionalProperties"] is False
        assert not {"user_id", "app_name", "user", "app"} & set(d["function"]["parameters"]["properties"])
    json.dumps(SESSION_TOOL_DEFINITIONS)


async def test_each_tool_works_on_the_users_own_sessions(world) -> None:
    svc, tools = world
    listed = await tools.execute(call("sessions_list"))
    assert {s["session_id"] for s in listed["sessions"]} == {"mine", "other-of-u1"}
    assert [s["current"] for s in listed["sessions"] if s["session_id"] == "mine"] == [True]
    history = await tools.execute(call("sessions_history", {"limit": 5}))
    assert history["session_id"] == "mine" and [m["text"] for m in history["messages"]] == ["hello from u1/mine"]
    assert (await tools.execute(call("sessions_metadata_set", {"session_id": "other-of-u1", "title": "Japan",
                                                               "metadata": {"lang": "ja", "x": 1}})))["title"] == "Japan"
    assert await tools.execute(call("sessions_metadata_set", {"session_id": "other-of-u1", "metadata": {"x": None}})) == {
        "session_id": "other-of-u1", "title": "Japan", "metadata": {"lang": "ja"}}
    got = await tools.execute(call("sessions_get", {"session_id": "other-of-u1"}))
    assert got["title"] == "Japan" and got["metadata"] == {"lang": "ja"} and got["current"] is False
    assert await tools.execute(call("sessions_metadata_get", {})) == {"session_id": "mine", "title": None, "metadata": {}}
    cleared = await tools.execute(call("sessions_clear", {"session_id": "other-of-u1"}))
    assert cleared == {"cleared": "other-of-u1", "events_removed": 1}
    assert (await svc.get_session(Key(APP, "u1", "other-of-u1"))).events == []
    assert await tools.execute(call("sessions_delete", {"session_id": "other-of-u1"})) == {"deleted": "other-of-u1"}
    assert await svc.get_session(Key(APP, "u1", "other-of-u1")) is None
    await untouched(svc)


HOSTILE = [
    # another user's session, by id, with every tool
    ("sessions_history", {"session_id": "secret"}, "no session 'secret'"),
    ("sessions_get", {"session_id": "secret"}, "no session 'secret'"),
    ("sessions_clear", {"session_id": "secret"}, "no session 'secret'"),
    ("sessions_delete", {"session_id": "secret"}, "no session 'secret'"),
    ("sessions_metadata_set", {"session_id": "secret", "title": "pwned"}, "not"),
    ("sessions_metadata_get", {"session_id": "secret"}, "no session 'secret'"),
    # naming a user or an app: not arguments of any tool
    ("sessions_list", {"user_id": "u2"}, "unknown argument(s) 'user_id'"),
    ("sessions_delete", {"session_id": "secret", "user_id": "u2"}, "unknown argument"),
    ("sessions_clear", {"session_id": "mine", "app_name": "other-app"}, "unknown argument"),
    ("sessions_metadata_set", {"session_id": "mine", "title": "x", "user": "u2"}, "unknown argument"),
    # ids the store cannot hold, path and SQL tricks
    ("sessions_history", {"session_id": "../u2/secret"}, "no session"),
    ("sessions_get", {"session_id": "secret' OR '1'='1"}, "no session"),
    ("sessions_delete", {"session_id": "%"}, "no session"),
    ("sessions_get", {"session_id": "bad\u0000id"}, "control character"),
    ("sessions_get", {"session_id": "x" * 10_000}, "limit is 128"),
    ("sessions_get", {"session_id": ""}, "must not be empty"),
    ("sessions_get", {"session_id": 42}, "must be a string"),
    ("sessions_get", {"session_id": ["secret"]}, "must be a string"),
    ("sessions_get", {"session_id": {"$ne": None}}, "must be a string"),
    # out-of-range and ill-typed values
    ("sessions_list", {"limit": -1}, "limit must be"),
    ("sessions_list", {"limit": 0}, "limit must be"),
    ("sessions_list", {"limit": 10**9}, "limit must be"),
    ("sessions_list", {"limit": "5"}, "limit must be"),
    ("sessions_list", {"limit": True}, "limit must be"),
    ("sessions_list", {"limit": 2.5}, "limit must be"),
    ("sessions_metadata_set", {"title": 5}, "title must be"),
    ("sessions_metadata_set", {"metadata": [1, 2]}, "metadata must be"),
    ("sessions_metadata_set", {}, "give a title"),
    ("sessions_delete", {}, "current session cannot be deleted"),
    ("sessions_delete", {"session_id": "mine"}, "current session cannot be deleted"),
    ("sessions_drop_tables", {}, "unknown tool"),
    ("", {}, "unknown tool"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), HOSTILE, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(HOSTILE)])
async def test_hostile_arguments_get_an_error_and_reach_nothing(world, tool, arguments, expected) -> None:
    svc, tools = world
    result = await tools.execute(call(tool, arguments))
    assert set(result) == {"error"} and expected in result["error"], result
    await untouched(svc)
    assert {s.id for s in (await svc.list_sessions(UserKey(APP, "u1"))).sessions} == {"mine", "other-of-u1"}


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "42", "null", '"text"', "{" * 5000, "x" * 200_000, '{"session_id": "secret"'])
async def test_malformed_argument_text_is_an_error(world, raw) -> None:
    svc, tools = world
    result = await tools.execute(call("sessions_get", raw=raw))
    assert set(result) == {"error"}
    await untouched(svc)


async def test_a_tool_set_bound_to_u2_cannot_see_u1(world) -> None:
    svc, _ = world
    tools = SessionTools(svc, APP).for_user("u2", None)
    assert [s["session_id"] for s in (await tools.execute(call("sessions_list")))["sessions"]] == ["secret"]
    assert "no session" in (await tools.execute(call("sessions_history", {"session_id": "mine"})))["error"]
    assert "session_id is required" in (await tools.execute(call("sessions_history", {})))["error"]
