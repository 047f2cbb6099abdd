"""Session summaries: the Summarizer protocol, ready triggers, the filter-key rule, the records.

A summary condenses a session's older events into text a model reads in
their place. Summaries are incremental: each run gets the previous summary
and only the events it does not cover yet, and the stored summary records
the seq of the last event it covers (``through_seq``), so a reader knows
which events it replaces (``SessionService.history_for_model``).

The filter-key rule (one place: ``branch_matches``): the filter key ``""``
selects every event of the session; any other key ``k`` selects the events
whose ``branch`` is ``k`` or starts with ``k`` followed by ``"."`` or ``"/"``
(a sub-branch: ``"root"`` selects ``"root"``, ``"root.child"`` and
``"root/tool"``, never ``"rootless"``). Events without a branch match only ``""``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from . import jsonvalue
from .errors import InvalidArgumentError
from .records import Event, Session, utcnow

Trigger = Callable[[Session], bool]
"""Decides from a session view whether to summarize now. The view's ``events``
are the events the stored summary does not cover yet (selected by filter key)."""

SummaryStatus = Literal[
    "created", "not_triggered", "up_to_date", "no_summarizer", "session_not_found", "timed_out", "failed", "cancelled"
]


@runtime_checkable
class Summarizer(Protocol):
    """What a service needs to write summaries (pass it as ServiceOptions.summarizer)."""

    async def summarize(self, session: Session, events: list[Event], previous_summary: str | None) -> str:
        """The new summary text: ``previous_summary`` (None the first time) extended by ``events``."""
        ...

    def should_summarize(self, session: Session) -> bool:
        """Whether to summarize now; ``session.events`` are the events not yet covered."""
        ...


@dataclass(frozen=True, slots=True)
class StoredSummary:
    """One stored summary of a session (for one filter key)."""

    text: str
    through_seq: int
    """The seq of the last event this summary covers: later events are not in it."""
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "updated_at": self.updated_at.isoformat()}

    @classmethod
    def from_json(cls, doc: Any, through_seq: int) -> StoredSummary:
        if isinstance(doc, (str, bytes)):
            doc = jsonvalue.loads(doc)
        return cls(str(doc["text"]), int(through_seq), datetime.fromisoformat(doc["updated_at"]))


@dataclass(frozen=True, slots=True)
class SummaryResult:
    """What create_session_summary did. ``status`` says why nothing was written, if nothing was:

    - ``created``: ``summary`` is the new stored summary;
    - ``not_triggered``: the summarizer's should_summarize said no (pass force=True to override);
    - ``up_to_date``: no event since the stored summary (or no event at all);
    - ``no_summarizer``: the service has no summarizer configured (a no-op, not an error);
    - ``session_not_found``: the session is not active;
    - only for jobs (summary_jobs.py): ``timed_out``, ``failed`` (``error`` holds
      the exception) and ``cancelled`` (the service closed first).
    """

    status: SummaryStatus
    summary: StoredSummary | None = None
    error: BaseException | None = None

    @property
    def created(self) -> bool:
        return self.status == "created"


class ModelHistory(NamedTuple):
    """What a model should read: the whole-session summary (or None) and the events after it."""

    summary: str | None
    events: list[Event]


def branch_matches(branch: str | None, filter_key: str) -> bool:
    """The filter-key rule (module docstring): "" selects all; "k" selects branch k and its sub-branches."""
    if not filter_key:
        return True
    if branch is None or not branch.startswith(filter_key):
        return False
    return len(branch) == len(filter_key) or branch[len(filter_key)] in "./"


def select_events(events: Sequence[Event], filter_key: str) -> list[Event]:
    return [e for e in events if branch_matches(e.branch, filter_key)]


# ---------------------------------------------------------------- triggers


def event_text(event: Event) -> str:
    """The text of an event a length trigger counts: a string content as is, anything else as JSON."""
    content = event.content
    if content is None:
        return ""
    return content if isinstance(content, str) else jsonvalue.dumps_str(content)


def every_n_events(n: int) -> Trigger:
    """True once at least ``n`` events are not covered by the stored summary."""
    _positive(n, "n")
    return lambda session: len(session.events) >= n


def text_exceeds(chars: int) -> Trigger:
    """True once the uncovered events' text (``event_text``) is longer than ``chars`` characters."""
    _positive(chars, "chars")
    return lambda session: sum(len(event_text(e)) for e in session.events) > chars


def tokens_exceed(tokens: int, count_tokens: Callable[[str], int] | None = None) -> Trigger:
    """True once the uncovered events' text is more than ``tokens`` tokens.

    ``count_tokens`` defaults to a rough 4 characters per token; pass your
    model's tokenizer for an exact count.
    """
    _positive(tokens, "tokens")
    count = count_tokens or (lambda text: (len(text) + 3) // 4)
    return lambda session: sum(count(event_text(e)) for e in session.events) > tokens


def idle_for(duration: timedelta, clock: Callable[[], datetime] = utcnow) -> Trigger:
    """True when the newest uncovered event is at least ``duration`` old (the conversation paused)."""
    if not isinstance(duration, timedelta) or duration <= timedelta(0):
        raise InvalidArgumentError(f"duration must be a positive timedelta, got {duration!r}")
    return lambda session: bool(session.events) and clock() - session.events[-1].timestamp >= duration


def any_of(*triggers: Trigger) -> Trigger:
    """True when any of ``triggers`` is."""
    return lambda session: any(t(session) for t in triggers)


def all_of(*triggers: Trigger) -> Trigger:
    """True when all of ``triggers`` are (and there is at least one)."""
    return lambda session: bool(triggers) and all(t(session) for t in triggers)


class FunctionSummarizer:
    """A Summarizer from an async function and a trigger (default: whenever there are new events)."""

    def __init__(
        self,
        summarize: Callable[[Session, list[Event], str | None], Any],
        trigger: Trigger | None = None,
    ) -> None:
        self._summarize = summarize
        self._trigger = trigger or every_n_events(1)

    async def summarize(self, session: Session, events: list[Event], previous_summary: str | None) -> str:
        return str(await self._summarize(session, events, previous_summary))

    def should_summarize(self, session: Session) -> bool:
        return self._trigger(session)


def _positive(value: object, name: str) -> None:
    if type(value) is not int or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")
