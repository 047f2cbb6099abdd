"""`Runner`: one call per user message; it loads (or creates) the session, stores the turn, calls the model.

    runner = Runner(svc, model, "my-agent")
    reply = await runner.run("u1", "s1", "How's the weather in Shanghai?")
    async for chunk in runner.stream("u1", "s1", "What about Beijing?"): print(chunk, end="")

Each turn: read the session (created if missing; an idle one is replaced by
a fresh session linked to it in metadata), check ``max_turns``, append the
user's event, build the model's input from the stored history (the summary,
when there is one, then only the events after it), call the model, append
its reply event, run any tool calls it asked for (appending their call and
result events) and call it again, then let the summarizer write a summary
if it is time. Runs on one session are serialised within the process (an
asyncio lock per session); across processes, the store orders the appends.
The turn count lives in the session state (``runner_turns``), written by
the user's event itself, so it costs no extra write.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from ..errors import ConflictError, InvalidArgumentError, MaxTurnsError, SessionExistsError
from ..keys import Key
from ..records import Session
from ..service import SessionService
from .history import events_to_messages, reply_event, summary_message, tool_result_event, user_event
from .models import ChatModel, Message, ModelReply, ToolCall
from .summaries import HistorySource, LLMSummarizer, ServiceSummaryHistory, StateSummaryHistory, Summarizer
from .tools import SessionTools

TURNS_KEY = "runner_turns"
"""Session-state key counting the user turns the runner stored (checked against max_turns)."""
PREVIOUS_SESSION, NEXT_SESSION = "previous_session", "next_session"
"""Metadata keys linking a session that went idle to the fresh one that replaced it."""

_TURN_ATTEMPTS = 8
"""How often a turn re-reads the count after losing a race with a turn stored elsewhere."""

__all__ = ["NEXT_SESSION", "PREVIOUS_SESSION", "TURNS_KEY", "Reply", "ReplyStream", "Runner"]


class Reply(str):
    """The model's reply text; ``session_id`` says which session holds it (it differs from the
    one asked for when ``idle_timeout`` started a fresh session)."""

    session_id: str
    new_session: bool

    def __new__(cls, text: str, session_id: str, new_session: bool) -> Reply:
        reply = super().__new__(cls, text)
        reply.session_id = session_id
        reply.new_session = new_session
        return reply


class ReplyStream:
    """``async for chunk in runner.stream(...)``: the reply's text as it arrives.

    ``session_id`` is known once the first chunk has arrived; ``text`` holds
    the whole reply at the end. Iterate it to the end (or ``await aclose()``):
    the session's lock is held until then.
    """

    def __init__(self, chunks: Callable[[ReplyStream], AsyncIterator[str]]) -> None:
        self.session_id: str | None = None
        self.new_session = False
        self.text = ""
        self._chunks = chunks(self)

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        chunk = await self._chunks.__anext__()
        self.text += chunk
        return chunk

    async def aclose(self) -> None:
        await self._chunks.aclose()  # type: ignore[attr-defined]  # an async generator


class Runner:
    """Runs conversation turns against a `ChatModel`, keeping every turn in a `SessionService`.

    ``history_events``: how many of the newest stored events (after the
    summary) the model sees. ``summarizer``: writes a summary when its
    ``should_summarize`` says so (keep its period below ``history_events``).
    When the service has a summarizer (``ServiceOptions.summarizer``), that
    one is used and the summaries are the service's (`ServiceSummaryHistory`);
    the runner's own ``summarizer`` is then refused unless it is the same.
    Otherwise the runner keeps its summaries in the session state
    (`StateSummaryHistory`). ``history`` overrides that choice.
    ``max_turns``: user turns per session; the next raises `MaxTurnsError`.
    ``idle_timeout``: a session not updated for that long is left as it is,
    and the turn goes to a fresh session whose metadata names the old one
    (``previous_session``; the old one gets ``next_session``, which later
    turns addressed to the old id follow). ``Reply.session_id`` says where
    a turn went. ``tools``:
    session tools offered to models that support them, bound to the user.
    """

    def __init__(
        self,
        service: SessionService,
        model: ChatModel,
        app_name: str,
        *,
        history_events: int = 50,
        summarizer: Summarizer | None = None,
        max_turns: int | None = None,
        idle_timeout: timedelta | None = None,
        tools: SessionTools | None = None,
        system_prompt: str | None = None,
        max_tool_rounds: int = 8,
        history: HistorySource | None = None,
    ) -> None:
        Key(app_name, "check")  # validates the app name now, not on the first turn
        for name, value in (("history_events", history_events), ("max_tool_rounds", max_tool_rounds)):
            if type(value) is not int or value < 1:
                raise InvalidArgumentError(f"{name} must be an int >= 1, got {value!r}")
        if max_turns is not None and (type(max_turns) is not int or max_turns < 1):
            raise InvalidArgumentError(f"max_turns must be an int >= 1 or None, got {max_turns!r}")
        if idle_timeout is not None and (not isinstance(idle_timeout, timedelta) or idle_timeout <= timedelta(0)):
            raise InvalidArgumentError(f"idle_timeout must be a positive timedelta or None, got {idle_timeout!r}")
        self.service = service
        self.model = model
        self.app_name = app_name
        self.history_events = history_events
        own: Summarizer | None = service.options.summarizer
        if history is None and own is not None and summarizer is not None and summarizer is not own:
            raise InvalidArgumentError(
                "the service has its own summarizer (ServiceOptions.summarizer), which writes its summaries;"
                " give the runner none, or the same one")
        self.summarizer = summarizer or own
        self.max_turns = max_turns
        self.idle_timeout = idle_timeout
        self.tools = tools
        self.system_prompt = system_prompt
        self.max_tool_rounds = max_tool_rounds
        self.history = history or (ServiceSummaryHistory(service) if own is not None else StateSummaryHistory(service))
        self._locks: weakref.WeakValueDictionary[Key, asyncio.Lock] = weakref.WeakValueDictionary()

    # ------------------------------------------------------------------ public

    async def run(self, user_id: str, session_id: str, message: str) -> Reply:
        """One turn: store `message`, call the model, store and return its reply."""
        stream = self.stream(user_id, session_id, message, streaming=False)
        try:
            async for _ in stream:
                pass
        finally:
            await stream.aclose()  # on cancellation too: releases the session's lock at once
        assert stream.session_id is not None
        return Reply(stream.text, stream.session_id, stream.new_session)

    def stream(self, user_id: str, session_id: str, message: str, *, streaming: bool = True) -> ReplyStream:
        """The same turn as `run`, its reply text yielded in chunks as the model produces them."""
        key = Key(self.app_name, user_id, session_id).require_session_id()
        if not isinstance(message, str) or not message.strip():
            raise InvalidArgumentError("message must be a non-empty str")
        return ReplyStream(lambda out: self._turn(key, message, streaming, out))

    async def load_session(self, user_id: str, session_id: str) -> Session:
        """The session a turn would use now (read, created if missing, replaced if idle)."""
        key = Key(self.app_name, user_id, session_id).require_session_id()
        async with self._lock(key):
            session, _ = await self._session(key)
            return session

    async def summarize(self, user_id: str, session_id: str) -> str | None:
        """Write a summary of the session now (with the summarizer, else `LLMSummarizer(model)`);
        its text, or None when the session has nothing to summarize."""
        key = Key(self.app_name, user_id, session_id).require_session_id()
        async with self._lock(key):
            session = await self.service.get_session(key, event_num=self.history_events * 2 + 1)
            if session is None:
                return None
            return await self.history.summarize(session, self.summarizer or LLMSummarizer(self.model), force=True)

    # ------------------------------------------------------------------ the turn

    def _lock(self, key: Key) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _turn(self, key: Key, message: str, streaming: bool, out: ReplyStream) -> AsyncIterator[str]:
        lock = self._lock(key)  # held by this frame, so the weak dictionary keeps it while we run
        async with lock:
            session, fresh = await self._session(key)
            invocation = uuid.uuid4().hex
            for attempt in range(_TURN_ATTEMPTS):
                out.session_id, out.new_session = session.id, fresh
                turns = session.state.get(TURNS_KEY, 0)
                turns = turns if type(turns) is int else 0
                if self.max_turns is not None and turns >= self.max_turns:
                    raise MaxTurnsError(
                        f"session {session.id!r} has had its {self.max_turns} turns (max_turns); start a new session",
                        max_turns=self.max_turns, turns=turns)
                event = user_event(message, invocation)
                event.state_delta[TURNS_KEY] = turns + 1
                if self.max_turns is None:
                    await self.service.append_event(session, event)
                    break
                # The count is checked at the version it was read at: a runner in another process
                # that stored a turn meanwhile makes this a conflict, and the count is read again.
                try:
                    await self.service.append_event(session, event, expected_version=session.version)
                    break
                except ConflictError:
                    if attempt + 1 == _TURN_ATTEMPTS:
                        raise
                    session, fresh = await self._session(key)
            tools = self.tools.for_user(key.user_id, session.id) if self.tools and self.model.supports_tools else None
            for _round in range(self.max_tool_rounds):
                messages = await self._messages(session)
                if streaming:
                    text, calls, delta = "", tuple[ToolCall, ...](), dict[str, Any]()
                    async for chunk in self.model.stream(messages, tools=tools.definitions if tools else None,
                                                         state=session.state):
                        if chunk.text:
                            text += chunk.text
                            yield chunk.text
                        calls = chunk.tool_calls or calls
                        delta = dict(chunk.state_delta) or delta
                    reply = ModelReply(text, calls, delta)
                else:
                    reply = await self.model.complete(messages, tools=tools.definitions if tools else None,
                                                      state=session.state)
                    if reply.text:
                        yield reply.text
                await self.service.append_event(
                    session, reply_event(reply.text, reply.tool_calls, self.model.name, invocation, dict(reply.state_delta)))
                if not reply.tool_calls or tools is None:
                    break
                for call in reply.tool_calls:
                    result = await tools.execute(call)
                    await self.service.append_event(session, tool_result_event(call, result, invocation))
            if self.summarizer is not None:
                await self.history.summarize(session, self.summarizer)

    async def _messages(self, session: Session) -> list[Message]:
        summary, events = await self.history.history(session, self.history_events)
        messages = [Message("system", self.system_prompt)] if self.system_prompt else []
        if summary:
            messages.append(summary_message(summary))
        return messages + events_to_messages(events)

    async def _session(self, key: Key) -> tuple[Session, bool]:
        """The session for this turn, and whether it is another one than `key` names: a fresh
        session that replaced an idle one (or the one an earlier turn already replaced it with)."""
        window = self.history_events * 2 + 1  # room for the summary's events and this turn's
        session = await self.service.get_session(key, event_num=window)
        if session is None:
            return await self._create(key), False
        followed = False
        for _hop in range(8):  # follow next_session links a caller still holding the old id would miss
            if not self._idle(session):
                return session, followed
            successor = session.metadata.get(NEXT_SESSION)
            if not isinstance(successor, str):
                break
            found = await self.service.get_session(Key(key.app_name, key.user_id, successor), event_num=window)
            if found is None:
                break
            session, followed = found, True
        fresh = await self.service.create_session(Key(key.app_name, key.user_id))
        await self.service.set_session_metadata(fresh.key, metadata={PREVIOUS_SESSION: session.id})
        await self.service.set_session_metadata(session.key, metadata={NEXT_SESSION: fresh.id})
        fresh.metadata[PREVIOUS_SESSION] = session.id
        return fresh, True

    def _idle(self, session: Session) -> bool:
        return self.idle_timeout is not None and self._now() - session.updated_at >= self.idle_timeout

    async def _create(self, key: Key) -> Session:
        try:
            return await self.service.create_session(key)
        except SessionExistsError:  # another process created it between our read and our create
            session = await self.service.get_session(key, event_num=self.history_events * 2 + 1)
            if session is None:
                raise
            return session

    def _now(self) -> datetime:
        return self.service.options.clock()
