"""`OfflineModel`: what the chat talks to when no LLM is configured. It is not a language model.

It answers from the session's own stored history and state only, and says
so: it remembers facts the user states ("my name is Alice", "my favourite
colour is blue") by asking the runner to store them in the session state
(key ``remembered_facts``), answers "what is my name?" from that state (or,
failing that, from the stored messages it is shown), and recaps the
conversation from the stored events. Everything else gets a reply that says
no LLM is configured and how to configure one. Its replies are deterministic,
which also makes it the model the chat's end-to-end tests drive.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from .models import Message, ModelReply, StreamChunk

FACTS_KEY = "remembered_facts"
"""The session-state key where the offline model keeps what it was told ({"name": "Alice"})."""

NAME = "offline"
LABEL = "offline model (no LLM: answers only from this session's stored history and state)"
NO_LLM = ("I am the offline model, not an LLM: I can remember facts you tell me (\"my name is ...\"), "
          "answer questions about them, and recap this conversation. "
          "Set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server) to talk to a real model.")

_STATE = re.compile(r"\bmy\s+([a-z][a-z ]{0,30}?)\s+is\s+(.{1,80}?)(?=\s+and\s+my\b|[,.;!?\n]|$)", re.IGNORECASE)
_CALL_ME = re.compile(r"\bcall me\s+([^.!?,\n]{1,40})", re.IGNORECASE)
_ASK = re.compile(r"\b(?:what(?:'s| is)|do you (?:know|remember))\s+my\s+([a-z][a-z ]{0,30}?)\s*\??\s*$", re.IGNORECASE)
_WHO = re.compile(r"\bwho am i\b", re.IGNORECASE)
_RECAP = re.compile(r"\b(recap|summar|what (?:were|have) we (?:been )?(?:talking|discussing|discussed))", re.IGNORECASE)
_GREETING = re.compile(r"^\s*(hi|hello|hey|good (?:morning|afternoon|evening))\b", re.IGNORECASE)

__all__ = ["FACTS_KEY", "LABEL", "NAME", "OfflineModel"]


class OfflineModel:
    """A `ChatModel` that answers from stored history and state, and never pretends to be an LLM."""

    name = NAME
    supports_tools = False

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> ModelReply:
        return self.answer(messages, state or {})

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamChunk]:
        reply = self.answer(messages, state or {})
        words = reply.text.split(" ")
        for i, word in enumerate(words):
            yield StreamChunk(text=word if i == len(words) - 1 else word + " ")
        yield StreamChunk(state_delta=reply.state_delta)

    def answer(self, messages: Sequence[Message], state: Mapping[str, Any]) -> ModelReply:
        """The reply to the last user message, given the messages before it and the session state."""
        users = [m for m in messages if m.role == "user"]
        if not users:
            return ModelReply(NO_LLM)
        text = users[-1].content.strip()
        stored = state.get(FACTS_KEY)
        facts: dict[str, str] = dict(stored) if isinstance(stored, dict) else {}

        if _RECAP.search(text):
            return ModelReply(_recap(messages[:-1] if messages and messages[-1].role == "user" else messages, facts))
        asked = _ASK.search(text)
        if asked or _WHO.search(text):
            attribute = _attribute(asked.group(1)) if asked else "name"
            value = facts.get(attribute) or _from_history(attribute, users[:-1])
            if value:
                return ModelReply(f"Your {attribute} is {value}.")
            return ModelReply(f"You haven't told me your {attribute} in this session. (offline model: I only "
                              "know what is stored in this session)")
        told = {_attribute(m.group(1)): _value(m.group(2)) for m in _STATE.finditer(text)}
        if (called := _CALL_ME.search(text)) is not None:
            told["name"] = _value(called.group(1))
        told = {k: v for k, v in told.items() if v}
        if told:
            facts.update(told)
            noted = ", ".join(f"your {k} is {v}" for k, v in told.items())
            return ModelReply(f"Noted: {noted}. I've stored it in this session.", state_delta={FACTS_KEY: facts})
        if _GREETING.search(text):
            return ModelReply("Hello! " + NO_LLM)
        return ModelReply(NO_LLM)


def _attribute(text: str) -> str:
    return " ".join(text.lower().split())


def _value(text: str) -> str:
    return text.strip().strip("\"'").strip()


def _from_history(attribute: str, users: Sequence[Message]) -> str | None:
    for message in reversed(users):
        for m in _STATE.finditer(message.content):
            if _attribute(m.group(1)) == attribute:
                return _value(m.group(2))
        if attribute == "name" and (called := _CALL_ME.search(message.content)) is not None:
            return _value(called.group(1))
    return None


def _recap(messages: Sequence[Message], facts: Mapping[str, str]) -> str:
    """A recap built from the stored events the model was shown (and the stored summary, if any)."""
    summaries = [m.content for m in messages if m.role == "system" and m.content.startswith("Summary of")]
    said = [m.content for m in messages if m.role == "user" and not _RECAP.search(m.content)]
    if not said and not summaries:
        return "Recap (offline model, from this session's stored events): nothing has been said yet."
    lines = ["Recap (offline model, from this session's stored events):"]
    if summaries:
        lines.append("Earlier: " + summaries[-1].split("\n", 1)[-1].strip())
    if said:
        lines.append(f"You said {len(said)} thing(s):")
        lines += [f"{i}. {_short(s)}" for i, s in enumerate(said[-10:], start=max(1, len(said) - 9))]
    if facts:
        lines.append("I know: " + ", ".join(f"your {k} is {v}" for k, v in facts.items()) + ".")
    return "\n".join(lines)


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
