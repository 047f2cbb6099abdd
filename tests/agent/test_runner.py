"""The Runner on every backend: multi-turn context, streaming, summaries, max_turns, concurrency, tools."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta

import pytest

from sessionstore import Key, UserKey
from sessionstore.agent import LLMSummarizer, Message, ModelReply, Runner, SessionTools, ToolCall
from sessionstore.agent.runner import TURNS_KEY
from sessionstore.agent.summaries import SUMMARY_KEY
from sessionstore.errors import InvalidArgumentError, InvalidKeyError, MaxTurnsError
from tests.agent.scripted import ScriptedModel, last_user

APP = "weather-agent"


def weather(messages: Sequence[Message]) -> str:
    question = last_user(messages)
    if "Beijing" in question:
        earlier = " ".join(m.content for m in messages[:-1])
        return "Beijing is cloudy today, 18°C" if "weather" in earlier else "Beijing what?"
    return "Shanghai is sunny today, 22°C" if "Shanghai" in question else "Hello, what can I help you with?"


async def test_multi_turn_the_second_question_sees_the_first(make_service) -> None:
    svc = await make_service()
    model = ScriptedModel(weather)
    runner = Runner(svc, model, APP)
    assert await runner.run("u1", "s1", "Hello") == "Hello, what can I help you with?"
    assert await runner.run("u1", "s1", "How's the weather in Shanghai?") == "Shanghai is sunny today, 22°C"
    assert await runner.run("u1", "s1", "What about Beijing?") == "Beijing is cloudy today, 18°C"
    assert [(m.role, m.content) for m in model.seen[-1]] == [
        ("user", "Hello"), ("assistant", "Hello, what can I help you with?"),
        ("user", "How's the weather in Shanghai?"), ("assistant", "Shanghai is sunny today, 22°C"),
        ("user", "What about Beijing?")]
    stored = await svc.get_session(Key(APP, "u1", "s1"))
    assert [e.author for e in stored.events] == ["user", "assistant"] * 3
    assert stored.events[-1].content == {"text": "Beijing is cloudy today, 18°C"}
    assert stored.events[-1].metadata == {"model": "scripted"} and stored.state[TURNS_KEY] == 3
    assert len({e.invocation_id for e in stored.events}) == 3  # one invocation per turn


async def test_a_new_runner_on_a_new_service_continues_the_stored_conversation(make_service, backend) -> None:
    if not backend.shared_storage:
        pytest.skip("the memory backend keeps nothing between services")
    await Runner(await make_service(), ScriptedModel(weather), APP).run("u1", "s1", "How's the weather in Shanghai?")
    model = ScriptedModel(weather)
    assert await Runner(await make_service(), model, APP).run("u1", "s1", "What about Beijing?") == "Beijing is cloudy today, 18°C"


async def test_sessions_and_users_do_not_share_context(make_service) -> None:
    svc = await make_service()
    runner = Runner(svc, ScriptedModel(weather), APP)
    await runner.run("u1", "s1", "How's the weather in Shanghai?")
    assert await runner.run("u1", "s2", "What about Beijing?") == "Beijing what?"
    assert await runner.run("u2", "s1", "What about Beijing?") == "Beijing what?"


async def test_stream_yields_chunks_and_stores_the_whole_reply(make_service) -> None:
    svc = await make_service()
    runner = Runner(svc, ScriptedModel(lambda m: "one two three"), APP)
    stream = runner.stream("u1", "s1", "count")
    chunks = [c async for c in stream]
    assert chunks == ["one ", "two ", "three"] and stream.text == "one two three" and stream.session_id == "s1"
    stored = await svc.get_session(Key(APP, "u1", "s1"))
    assert stored.events[-1].content == {"text": "one two three"}


async def test_history_events_bounds_what_the_model_sees(make_service) -> None:
    svc = await make_service()
    model = ScriptedModel()
    runner = Runner(svc, model, APP, history_events=3)
    for i in range(4):
        await runner.run("u1", "s1", f"message {i}")
    assert [m.content for m in model.seen[-1]] == ["message 2", "reply to: message 2", "message 3"]


async def test_summaries_replace_the_old_events(make_service) -> None:
    svc = await make_service()

    def answer(messages: Sequence[Message]) -> str:
        if last_user(messages).startswith("Summarize"):
            said = [m.content for m in messages if m.role == "user" and not m.content.startswith("Summarize")]
            return "SUMMARY: the user said " + ", ".join(said)
        return "ok"

    model = ScriptedModel(answer)
    runner = Runner(svc, model, APP, history_events=10, summarizer=LLMSummarizer(model, every_events=4))
    await runner.run("u1", "s1", "my name is Alice")
    await runner.run("u1", "s1", "I live in Paris")  # 4 events: the summary is written after this turn
    stored = await svc.get_session(Key(APP, "u1", "s1"))
    summary = stored.state[SUMMARY_KEY]
    assert summary["through_seq"] == 4 and "my name is Alice" in summary["text"]
    await runner.run("u1", "s1", "what is my name?")
    seen = model.seen[-1]
    assert seen[0].role == "system" and "SUMMARY: the user said my name is Alice, I live in Paris" in seen[0].content
    assert [m.content for m in seen[1:]] == ["what is my name?"]  # the summarised events are not sent again
    assert len(stored.events) == 4  # and nothing was deleted


async def test_max_turns_is_a_typed_error_that_stores_nothing(make_service) -> None:
    svc = await make_service()
    runner = Runner(svc, ScriptedModel(), APP, max_turns=2)
    await runner.run("u1", "s1", "one")
    await runner.run("u1", "s1", "two")
    with pytest.raises(MaxTurnsError) as caught:
        await runner.run("u1", "s1", "three")
    assert caught.value.max_turns == 2 and "max_turns" in str(caught.value)
    assert len((await svc.get_session(Key(APP, "u1", "s1"))).events) == 4
    assert await runner.run("u1", "s2", "a new session is fine") == "reply to: a new session is fine"


async def test_bad_arguments_are_refused_before_anything_is_stored(make_service) -> None:
    svc = await make_service()
    with pytest.raises(InvalidArgumentError):
        Runner(svc, ScriptedModel(), APP, history_events=0)
    with pytest.raises(InvalidArgumentError):
        Runner(svc, ScriptedModel(), APP, max_turns=0)
    with pytest.raises(InvalidKeyError):
        Runner(svc, ScriptedModel(), "")
    runner = Runner(svc, ScriptedModel(), APP)
    with pytest.raises(InvalidArgumentError):
        runner.stream("u1", "s1", "   ")
    with pytest.raises(InvalidKeyError):
        runner.stream("u1", "bad\x00id", "hi")
    assert (await svc.list_sessions(UserKey(APP, "u1"))).sessions == []


async def test_concurrent_runs_on_one_session_are_serialised(make_service) -> None:
    svc = await make_service()
    model = ScriptedModel(delay=0.01)
    runner = Runner(svc, model, APP, history_events=100)
    replies = await asyncio.gather(*(runner.run("u1", "s1", f"m{i}") for i in range(8)))
    assert sorted(replies) == sorted(f"reply to: m{i}" for i in range(8))
    stored = await svc.get_session(Key(APP, "u1", "s1"))
    assert [e.author for e in stored.events] == ["user", "assistant"] * 8  # turns never interleave
    for user, reply in zip(stored.events[::2], stored.events[1::2], strict=True):
        assert reply.content["text"] == f"reply to: {user.content['text']}"
    assert [len(seen) for seen in model.seen] == list(range(1, 16, 2))  # each turn saw all earlier ones
    assert stored.state[TURNS_KEY] == 8


async def test_two_runners_on_two_services_lose_no_turn(make_service, backend) -> None:
    if not backend.shared_storage:
        pytest.skip("two memory services share nothing")
    runners = [Runner(await make_service(), ScriptedModel(delay=0.005), APP) for _ in range(2)]
    await asyncio.gather(*(runners[i % 2].run("u1", "s1", f"m{i}") for i in range(8)))
    stored = await (await make_service()).get_session(Key(APP, "u1", "s1"))
    assert len(stored.events) == 16 and [e.seq for e in stored.events] == list(range(1, 17))
    assert sorted(e.content["text"] for e in stored.events if e.author == "user") == sorted(f"m{i}" for i in range(8))


async def test_max_turns_holds_across_runners_on_two_services(make_service, backend) -> None:
    """Two runners (two services, as two processes would have) racing for the last turns of
    one session: exactly max_turns turns are stored, the rest get MaxTurnsError."""
    if not backend.shared_storage:
        pytest.skip("two memory services share nothing")
    runners = [Runner(await make_service(), ScriptedModel(delay=0.002), APP, max_turns=3) for _ in range(2)]
    results = await asyncio.gather(
        *(runners[i % 2].run("u1", "s1", f"m{i}") for i in range(8)), return_exceptions=True
    )
    assert sum(isinstance(r, str) for r in results) == 3
    assert all(isinstance(r, MaxTurnsError) for r in results if not isinstance(r, str)), results
    stored = await (await make_service()).get_session(Key(APP, "u1", "s1"))
    # (turns of two processes may interleave: the per-session lock is in-process)
    assert sorted(e.author for e in stored.events) == ["assistant"] * 3 + ["user"] * 3
    assert stored.state[TURNS_KEY] == 3


async def test_tool_calls_are_run_and_stored_as_events(make_service) -> None:
    svc = await make_service()
    runner0 = Runner(svc, ScriptedModel(), APP)
    await runner0.run("u1", "older", "hello")

    def answer(messages: Sequence[Message]) -> ModelReply:
        if messages[-1].role == "tool":
            listed = json.loads(messages[-1].content)["sessions"]
            return ModelReply(f"you have {len(listed)} sessions")
        return ModelReply("", tool_calls=(ToolCall("call_1", "sessions_list", '{"limit": 10}'),))

    model = ScriptedModel(answer)
    runner = Runner(svc, model, APP, tools=SessionTools(svc, APP))
    assert await runner.run("u1", "current", "how many sessions do I have?") == "you have 2 sessions"
    assert model.tools_seen[0][0]["function"]["name"] == "sessions_list"
    stored = await svc.get_session(Key(APP, "u1", "current"))
    assert [e.author for e in stored.events] == ["user", "assistant", "tool", "assistant"]
    assert stored.events[1].content["tool_calls"] == [{"id": "call_1", "name": "sessions_list", "arguments": '{"limit": 10}'}]
    assert stored.events[2].content["tool_call_id"] == "call_1"
    assert {s["session_id"] for s in stored.events[2].content["result"]["sessions"]} == {"older", "current"}


async def test_models_without_tool_support_get_no_tools(make_service) -> None:
    svc = await make_service()
    model = ScriptedModel(supports_tools=False)
    await Runner(svc, model, APP, tools=SessionTools(svc, APP)).run("u1", "s1", "hi")
    assert model.tools_seen == [None]


async def test_an_idle_session_continues_in_a_fresh_one_linked_to_it(make_service, clock) -> None:
    svc = await make_service()
    runner = Runner(svc, ScriptedModel(weather), APP, idle_timeout=timedelta(minutes=30))
    first = await runner.run("u1", "s1", "How's the weather in Shanghai?")
    assert first.session_id == "s1" and not first.new_session
    clock.advance(minutes=29)
    assert await runner.run("u1", "s1", "What about Beijing?") == "Beijing is cloudy today, 18°C"  # not idle yet
    clock.advance(minutes=30)
    reply = await runner.run("u1", "s1", "What about Beijing?")
    assert reply.new_session and reply.session_id != "s1" and reply == "Beijing what?"  # a fresh context
    old, fresh = await svc.get_session(Key(APP, "u1", "s1")), await svc.get_session(Key(APP, "u1", reply.session_id))
    assert fresh.metadata == {"previous_session": "s1"} and old.metadata == {"next_session": fresh.id}
    assert len(old.events) == 4 and len(fresh.events) == 2  # the old session is kept as it was
    clock.advance(minutes=1)
    again = await runner.run("u1", "s1", "still there?")  # the old id follows the link instead of forking again
    assert again.session_id == fresh.id and again.new_session
    assert len((await svc.list_sessions(UserKey(APP, "u1"))).sessions) == 2
