"""`OpenAIChatModel`: any chat-completions endpoint (OpenAI, or a compatible server) as a `ChatModel`.

Needs the ``openai`` package: ``pip install 'sessionstore[openai]'``. It is
imported when a model is made, so the rest of sessionstore works without it.
The key and endpoint come from the arguments or, as the ``openai`` client
itself does, from ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``. Every failure
(an HTTP error status, a timeout, an unreachable endpoint) becomes one
`ModelError` line naming the model and the status, never the key.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError, ModelError
from .models import Message, ModelReply, StreamChunk, ToolCall

DEFAULT_MODEL = "gpt-4o-mini"

__all__ = ["DEFAULT_MODEL", "OpenAIChatModel", "has_openai_key"]


def has_openai_key() -> bool:
    """Whether the environment names an API key (the chat picks the offline model otherwise)."""
    return bool(os.environ.get("OPENAI_API_KEY"))


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise ConfigurationError(
            "the OpenAI-compatible model needs the openai package: pip install 'sessionstore[openai]'"
        ) from None
    return openai


class OpenAIChatModel:
    """A `ChatModel` over the chat-completions API, streaming included.

    ``timeout`` (seconds) bounds each request; ``max_retries`` is the openai
    client's own retry count for connection errors, 429 and 5xx.
    """

    supports_tools = True

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        temperature: float | None = None,
    ) -> None:
        openai = _import_openai()
        self._errors = openai
        self.name = model
        self.temperature = temperature
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ConfigurationError("no API key: set OPENAI_API_KEY (or pass api_key=)")
        self.client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def close(self) -> None:
        await self.client.close()

    def _request(self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.name, "messages": [_wire(m) for m in messages]}
        if tools:
            request["tools"] = [dict(t) for t in tools]
        if self.temperature is not None:
            request["temperature"] = self.temperature
        return request

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> ModelReply:
        try:
            response = await self.client.chat.completions.create(**self._request(messages, tools))
        except Exception as exc:  # noqa: BLE001 - every client failure becomes one ModelError
            raise self._model_error(exc) from exc
        if not response.choices:
            raise ModelError(f"model {self.name!r} returned no choices")
        message = response.choices[0].message
        calls = tuple(
            ToolCall(c.id, c.function.name, c.function.arguments or "{}")
            for c in (message.tool_calls or ())
            if getattr(c, "function", None) is not None
        )
        return ModelReply(text=message.content or "", tool_calls=calls)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamChunk]:
        parts: dict[int, dict[str, str]] = {}  # tool calls arrive in pieces, keyed by index
        try:
            response = await self.client.chat.completions.create(**self._request(messages, tools), stream=True)
            async for chunk in response:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                for piece in delta.tool_calls or ():
                    slot = parts.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = piece.id or slot["id"]
                    if piece.function is not None:
                        slot["name"] += piece.function.name or ""
                        slot["arguments"] += piece.function.arguments or ""
                if delta.content:
                    yield StreamChunk(text=delta.content)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - every client failure becomes one ModelError
            raise self._model_error(exc) from exc
        if parts:
            calls = tuple(ToolCall(p["id"], p["name"], p["arguments"] or "{}") for _, p in sorted(parts.items()))
            yield StreamChunk(tool_calls=calls)

    def _model_error(self, exc: BaseException) -> ModelError:
        openai = self._errors
        where = f"model {self.name!r} at {self.client.base_url}"
        if isinstance(exc, openai.APITimeoutError):
            return ModelError(f"{where}: no answer within the timeout")
        if isinstance(exc, openai.APIStatusError):
            return ModelError(f"{where}: HTTP {exc.status_code} {_first_line(exc.message)}")
        if isinstance(exc, openai.APIConnectionError):
            return ModelError(f"{where}: cannot connect ({_first_line(str(exc))})")
        return ModelError(f"{where}: {type(exc).__name__}: {_first_line(str(exc))}")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else ""


def _wire(message: Message) -> dict[str, Any]:
    """A `Message` as the chat-completions API spells it."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        if not message.content:
            out["content"] = None
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
    return out
