"""OpenAIChatModel against a real chat-completions server on 127.0.0.1 (tests/chat_server.py).

The openai client is used as shipped: it talks HTTP to the server, which
answers in JSON or server-sent events, fails with HTTP 500, or stalls past
the timeout.
"""

from __future__ import annotations

import json
import time

import pytest

from sessionstore.agent import Message, OpenAIChatModel, ToolCall
from sessionstore.errors import ConfigurationError, ModelError
from tests.chat_server import Answer, chat_server

pytest.importorskip("openai", reason="pip install 'sessionstore[openai]' to test the OpenAI-compatible model")

HISTORY = [Message("system", "be brief"), Message("user", "How's the weather in Shanghai?"),
           Message("assistant", "Sunny, 22°C."), Message("user", "What about Beijing?")]


def model(url: str, **options: object) -> OpenAIChatModel:
    return OpenAIChatModel("test-model", api_key="sk-test-secret", base_url=url, **options)  # type: ignore[arg-type]


async def test_complete_sends_the_messages_and_returns_the_text() -> None:
    with chat_server() as server:
        server.script.append(Answer("Cloudy, 18°C."))
        reply = await model(server.url).complete(HISTORY)
    assert reply.text == "Cloudy, 18°C." and reply.tool_calls == ()
    sent = server.requests[0]
    assert sent["model"] == "test-model" and "stream" not in sent
    assert [m["content"] for m in sent["messages"]] == [m.content for m in HISTORY]
    assert server.headers[0]["authorization"] == "Bearer sk-test-secret"


async def test_stream_yields_the_text_in_chunks() -> None:
    with chat_server() as server:
        server.script.append(Answer("one two three four"))
        chunks = [c async for c in model(server.url).stream(HISTORY)]
    texts = [c.text for c in chunks if c.text]
    assert len(texts) == 4 and "".join(texts) == "one two three four"
    assert server.requests[0]["stream"] is True


async def test_stream_arrives_as_it_is_produced() -> None:
    with chat_server() as server:
        server.script.append(Answer("a b c", chunk_delay=0.3))
        started = time.monotonic()
        stream = model(server.url).stream(HISTORY)
        first = await stream.__anext__()
        first_after = time.monotonic() - started
        rest = [c async for c in stream]
    assert first.text == "" or first.text == "a "
    assert first_after < 0.9 and len(rest) >= 2  # not buffered until the end (5 chunks x 0.3 s)


@pytest.mark.parametrize("streaming", [False, True])
async def test_tool_calls_with_their_arguments(streaming: bool) -> None:
    calls = [{"id": "call_1", "name": "sessions_list", "arguments": json.dumps({"limit": 5})},
             {"id": "call_2", "name": "sessions_get", "arguments": json.dumps({"session_id": "abc"})}]
    tools = [{"type": "function", "function": {"name": "sessions_list", "parameters": {"type": "object"}}}]
    with chat_server() as server:
        server.script.append(Answer("", tool_calls=calls))
        m = model(server.url)
        if streaming:
            found = [c for c in [c async for c in m.stream(HISTORY, tools=tools)] if c.tool_calls][-1].tool_calls
        else:
            found = (await m.complete(HISTORY, tools=tools)).tool_calls
    assert found == (ToolCall("call_1", "sessions_list", '{"limit": 5}'), ToolCall("call_2", "sessions_get", '{"session_id": "abc"}'))
    assert server.requests[0]["tools"] == tools


async def test_tool_call_history_goes_out_in_the_wire_format() -> None:
    history = [Message("user", "list"), Message("assistant", "", tool_calls=(ToolCall("c1", "sessions_list", "{}"),)),
               Message("tool", '{"sessions": []}', tool_call_id="c1", name="sessions_list")]
    with chat_server() as server:
        await model(server.url).complete(history)
    sent = server.requests[0]["messages"]
    assert sent[1] == {"role": "assistant", "content": None,
                       "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "sessions_list", "arguments": "{}"}}]}
    assert sent[2] == {"role": "tool", "content": '{"sessions": []}', "tool_call_id": "c1"}


@pytest.mark.parametrize("streaming", [False, True])
async def test_http_500_is_one_model_error_line_without_the_key(streaming: bool) -> None:
    with chat_server() as server:
        server.script.append(Answer(status=500))
        m = model(server.url, max_retries=0)
        with pytest.raises(ModelError) as caught:
            if streaming:
                [c async for c in m.stream(HISTORY)]
            else:
                await m.complete(HISTORY)
    text = str(caught.value)
    assert "HTTP 500" in text and "test-model" in text and "\n" not in text
    assert "sk-test-secret" not in text


async def test_the_client_retries_a_500_then_succeeds() -> None:
    with chat_server() as server:
        server.script += [Answer(status=500), Answer("fine now")]
        reply = await model(server.url, max_retries=1).complete(HISTORY)
    assert reply.text == "fine now" and len(server.requests) == 2


async def test_a_stalled_server_times_out_as_a_model_error() -> None:
    with chat_server() as server:
        server.script.append(Answer("too late", delay=2.0))
        started = time.monotonic()
        with pytest.raises(ModelError, match="timeout"):
            await model(server.url, timeout=0.5, max_retries=0).complete(HISTORY)
    assert time.monotonic() - started < 1.8


async def test_an_unreachable_endpoint_is_a_model_error() -> None:
    with chat_server() as server:
        url = server.url
    with pytest.raises(ModelError, match="cannot connect"):
        await model(url, max_retries=0, timeout=2).complete(HISTORY)


def test_no_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIChatModel("m")


async def test_key_and_endpoint_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with chat_server() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        await OpenAIChatModel("env-model").complete(HISTORY)
    assert server.headers[0]["authorization"] == "Bearer sk-from-env" and server.requests[0]["model"] == "env-model"
