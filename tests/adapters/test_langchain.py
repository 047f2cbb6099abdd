"""The LangChain adapter on every backend: sync and async methods, every message field,
batches, concurrency (tasks and processes), ``RunnableWithMessageHistory``, a restart."""

from __future__ import annotations

import asyncio
import json
import sys
import warnings

import pytest
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import (
    AIMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    messages_to_dict,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from sessionstore import ConfigurationError
from sessionstore.langchain import SessionStoreChatMessageHistory
from tests.adapters.scripted import run_processes

warnings.filterwarnings("ignore", message=".*BaseChatMessageHistory.*", category=DeprecationWarning)

MESSAGES = [
    SystemMessage("You are terse.", id="m0"),
    HumanMessage("Weather in Paris?", id="m1", name="ann", additional_kwargs={"lang": "en"}),
    AIMessage(
        "", id="m2",
        tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}],
        response_metadata={"model_name": "scripted", "finish_reason": "tool_calls"},
        usage_metadata={"input_tokens": 10, "output_tokens": 3, "total_tokens": 13},
        additional_kwargs={"refusal": None},
    ),
    ToolMessage("sunny, 21°C", tool_call_id="call_1", id="m3", artifact={"raw": [1, 2]}, status="success"),
    FunctionMessage("42", name="answer", id="m4"),
    AIMessage([{"type": "text", "text": "Sunny."}], id="m5"),
]


def url_of(backend) -> str:
    return "memory://" if backend.name == "memory" else backend.url  # a Redis URL carries its run's key prefix


@pytest.fixture
def history(store) -> SessionStoreChatMessageHistory:
    return SessionStoreChatMessageHistory("chat-1", store)


async def test_it_is_a_base_chat_message_history(history):
    assert isinstance(history, BaseChatMessageHistory)


async def test_every_field_round_trips_async(history):
    assert await history.aget_messages() == []
    await history.aadd_messages(MESSAGES)
    got = await history.aget_messages()
    assert messages_to_dict(got) == messages_to_dict(MESSAGES)
    assert got == MESSAGES
    await history.aclear()
    assert await history.aget_messages() == []


async def test_sync_methods_through_a_history_opened_from_a_url(backend, store):
    history = SessionStoreChatMessageHistory("chat-sync", url_of(backend))
    try:
        assert history.messages == []
        history.add_messages(MESSAGES[:3])
        history.add_user_message("and tomorrow?")
        history.add_ai_message("Rain.")
        assert [m.content for m in history.messages][-2:] == ["and tomorrow?", "Rain."]
        assert history.messages[:3] == MESSAGES[:3]
        assert await history.aget_messages() == history.messages  # async methods on the same history
        history.clear()
        assert history.messages == []
    finally:
        history.close()


async def test_sync_methods_on_a_service_you_own_say_to_use_the_async_ones(history, backend):
    if backend.name == "memory":
        pytest.skip("an in-memory service you own works with the sync methods outside an event loop")
    with pytest.raises(ConfigurationError, match="aget_messages"):
        history.messages  # noqa: B018


async def test_a_batch_is_atomic(history):
    with pytest.raises(ValueError):
        await history.aadd_messages([HumanMessage("ok"), HumanMessage("x" * 2_000_000)])
    assert await history.aget_messages() == []


async def test_histories_are_isolated_and_concurrent_batches_stay_whole(store):
    a = SessionStoreChatMessageHistory("same", store)
    b = SessionStoreChatMessageHistory("same", store, user_id="other")
    await asyncio.gather(*(a.aadd_messages([HumanMessage(f"{n}-q"), AIMessage(f"{n}-a")]) for n in range(10)))
    assert await b.aget_messages() == []
    got = [m.content for m in await a.aget_messages()]
    assert len(got) == 20
    assert all(q.split("-")[0] == r.split("-")[0] for q, r in zip(got[::2], got[1::2], strict=False))


async def test_runnable_with_message_history_and_a_restart(store, backend):
    model = FakeMessagesListChatModel(responses=[AIMessage("Hello Ann."), AIMessage("Your name is Ann.")])
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{input}")])
    seen: list[list[str]] = []

    def record(prompt_value):
        seen.append([m.content for m in prompt_value.to_messages()])
        return prompt_value

    histories: dict[str, SessionStoreChatMessageHistory] = {}

    def get_history(session_id: str) -> SessionStoreChatMessageHistory:
        if session_id not in histories:
            histories[session_id] = SessionStoreChatMessageHistory(session_id, store)
        return histories[session_id]

    chain = RunnableWithMessageHistory(
        prompt | record | model, get_history, input_messages_key="input", history_messages_key="history",
    )
    config = {"configurable": {"session_id": "talk"}}
    assert (await chain.ainvoke({"input": "I am Ann."}, config=config)).content == "Hello Ann."
    assert (await chain.ainvoke({"input": "Who am I?"}, config=config)).content == "Your name is Ann."
    assert seen[1] == ["I am Ann.", "Hello Ann.", "Who am I?"]  # the second turn saw the first
    stored = await get_history("talk").aget_messages()
    assert [m.content for m in stored] == ["I am Ann.", "Hello Ann.", "Who am I?", "Your name is Ann."]
    if backend.name == "memory":
        return
    [out] = await run_processes(["langchain-read", backend.url, "talk"])
    assert json.loads(out) == messages_to_dict(stored)


async def test_two_processes_adding_batches_lose_nothing(durable_url):
    await run_processes(["langchain-add", durable_url, "shared", "10", "p1"], ["langchain-add", durable_url, "shared", "10", "p2"])
    history = SessionStoreChatMessageHistory("shared", durable_url)
    try:
        got = [m.content for m in history.messages]
    finally:
        history.close()
    assert sorted(got) == sorted(f"p{p}-{i}-{x}" for p in (1, 2) for i in range(10) for x in "ab")
    assert all(q[:-1] == r[:-1] for q, r in zip(got[::2], got[1::2], strict=False))


def test_without_langchain_the_import_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("sessionstore.langchain")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "langchain_core", None)
    with pytest.raises(ImportError, match=r"pip install 'sessionstore\[langchain\]'"):
        import sessionstore.langchain  # noqa: F401


async def test_histories_opened_from_one_url_share_one_service(backend, store):
    url = url_of(backend)
    first = SessionStoreChatMessageHistory("a", url)
    second = SessionStoreChatMessageHistory("b", url)
    try:
        assert first.service is second.service
        await first.aadd_messages([HumanMessage("hi")])
        assert [m.content for m in await first.aget_messages()] == ["hi"] and await second.aget_messages() == []
    finally:
        first.close()
        second.close()
    third = SessionStoreChatMessageHistory("a", url)  # a new one after the last was closed
    try:
        assert third.service is not first.service
        if backend.name != "memory":
            assert [m.content for m in third.messages] == ["hi"]
    finally:
        third.close()
