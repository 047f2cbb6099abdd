"""Summaries for the runner: `LLMSummarizer`, and where the runner gets a session's history from.

`LLMSummarizer(model)` writes a summary with any `ChatModel`; it fits the
core `sessionstore.summaries.Summarizer` protocol (re-exported here), so it
can be a service's ``ServiceOptions.summarizer`` as well as a runner's.

`HistorySource` is the runner's seam between "what the model sees" and
how summaries are kept. Two stores sit behind it:

- `ServiceSummaryHistory`: the service's own summaries (docs/summaries.md),
  written by ``create_session_summary`` with the service's summarizer and
  read by ``history_for_model`` (the summary plus only the events after
  it). The runner uses it whenever the service has a summarizer.
- `StateSummaryHistory`: for a service without one (the runner was given
  its own ``summarizer=``): the service API stores only summaries its own
  summarizer wrote, so this one keeps the newest summary in the session
  state (key ``runner_summary``: its text and the seq of the last event it
  covers) and gives the model the summary plus only the events after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import ConfigurationError, InvalidArgumentError
from ..records import Event, Session
from ..service import SessionService
from ..summaries import Summarizer
from .history import event_text, events_to_messages
from .models import ChatModel, Message

SUMMARY_KEY = "runner_summary"
"""Session-state key of the runner's summary: {"text": str, "through_seq": int}."""

SUMMARY_PROMPT = (
    "Summarize the conversation above for your own later use: the facts the user gave, "
    "decisions, open questions. Be brief; plain text."
)

__all__ = [
    "SUMMARY_KEY", "HistorySource", "LLMSummarizer", "ServiceSummaryHistory", "StateSummaryHistory", "Summarizer",
]


class LLMSummarizer:
    """A `Summarizer` that asks a `ChatModel` to summarize.

    ``every_events``: `should_summarize` says yes once that many events of
    the session are not covered by the last summary.
    """

    def __init__(self, model: ChatModel, *, every_events: int = 40, prompt: str = SUMMARY_PROMPT) -> None:
        if type(every_events) is not int or every_events < 1:
            raise ValueError(f"every_events must be an int >= 1, got {every_events!r}")
        self.model = model
        self.every_events = every_events
        self.prompt = prompt

    async def summarize(self, session: Session, events: Sequence[Event], previous_summary: str | None) -> str:
        messages: list[Message] = []
        if previous_summary:
            messages.append(Message("system", f"Summary of the earlier part of this conversation:\n{previous_summary}"))
        messages += events_to_messages(events)
        messages.append(Message("user", self.prompt))
        reply = await self.model.complete(messages, state=session.state)
        return reply.text.strip() or "\n".join(event_text(e) for e in events)[-2000:]

    def should_summarize(self, session: Session) -> bool:
        """Yes once `every_events` of the session's events are not covered by its summary (the
        service passes only those; `StateSummaryHistory` passes the loaded window)."""
        covered = _summary_of(session)[1]
        return sum(1 for e in session.events if (e.seq or 0) > covered) >= self.every_events


class HistorySource(Protocol):
    """Where the runner gets what the model sees, and where it keeps summaries."""

    async def history(self, session: Session, max_events: int) -> tuple[str | None, list[Event]]:
        """The summary (or None) and the newest events after it, at most `max_events`, oldest first."""
        ...

    async def summarize(self, session: Session, summarizer: Summarizer, *, force: bool = False) -> str | None:
        """Write a new summary if `summarizer` says it is time (or `force`); its text, or None.
        With `force` and nothing new to summarize: the stored summary (or None)."""
        ...

    async def summary_text(self, session: Session) -> str | None:
        """The stored summary of `session`, or None."""
        ...


class ServiceSummaryHistory:
    """The service's summary store: written by ``create_session_summary`` with the service's summarizer
    (``ServiceOptions.summarizer``), kept in its summaries table, read by ``history_for_model``."""

    def __init__(self, service: SessionService) -> None:
        if service.options.summarizer is None:
            raise ConfigurationError("ServiceSummaryHistory needs a service with a summarizer (ServiceOptions.summarizer)")
        self.service = service

    async def history(self, session: Session, max_events: int) -> tuple[str | None, list[Event]]:
        summary, events = await self.service.history_for_model(session.key, max_events)
        return summary, events

    async def summarize(self, session: Session, summarizer: Summarizer, *, force: bool = False) -> str | None:
        """`summarizer` must be the service's: the service stores only what its own summarizer writes."""
        if summarizer is not self.service.options.summarizer:
            raise InvalidArgumentError("the service writes its summaries with its own summarizer; pass that one")
        result = await self.service.create_session_summary(session.key, force=force)
        if result.summary is not None:
            return result.summary.text
        if force and result.status == "up_to_date":
            return await self.service.get_session_summary_text(session.key)
        return None

    async def summary_text(self, session: Session) -> str | None:
        return await self.service.get_session_summary_text(session.key)


class StateSummaryHistory:
    """The runner's summary store: the summary lives in the session state (`SUMMARY_KEY`)."""

    def __init__(self, service: SessionService) -> None:
        self.service = service

    async def history(self, session: Session, max_events: int) -> tuple[str | None, list[Event]]:
        text, through = _summary_of(session)
        events = [e for e in session.events if (e.seq or 0) > through]
        return text, events[-max_events:] if max_events else []

    async def summarize(self, session: Session, summarizer: Summarizer, *, force: bool = False) -> str | None:
        if not force and not summarizer.should_summarize(session):
            return None
        previous, through = _summary_of(session)
        events = [e for e in session.events if e.seq is not None and e.seq > through]
        if not events:
            return previous
        text = await summarizer.summarize(session, events, previous)
        last = max(e.seq or 0 for e in events)
        delta: dict[str, Any] = {SUMMARY_KEY: {"text": text, "through_seq": last}}
        await self.service.update_session_state(session.key, delta)
        session.state.update(delta)
        return text

    async def summary_text(self, session: Session) -> str | None:
        """The stored summary of `session` (as read with its state), or None."""
        return _summary_of(session)[0]


def _summary_of(session: Session) -> tuple[str | None, int]:
    stored = session.state.get(SUMMARY_KEY)
    if isinstance(stored, dict) and isinstance(stored.get("text"), str) and isinstance(stored.get("through_seq"), int):
        return stored["text"], stored["through_seq"]
    return None, 0
