"""SessionService's summary and track-event methods: a mixin, so service.py stays one page.

The public methods here validate their input once (like service.py's) and
call the backend's ``_``-methods declared at the bottom. The logic of a
summary run (what is new since the stored summary, the filter key, the
trigger, the incremental call) lives here once for every backend; backends
only store and read rows (docs/summaries.md, docs/architecture.md).
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from .errors import InvalidArgumentError, InvalidKeyError, SessionNotFoundError
from .keys import Key, check_identifier
from .options import ServiceOptions
from .records import Event, Session
from .summaries import ModelHistory, StoredSummary, SummaryResult, select_events
from .summary_jobs import SummaryJob, SummaryJobs, finished
from .telemetry import operation
from .tracks import TrackEvent, check_after, prepare_track_event

MAX_TRACK_PAGE = 1000


class SummariesAndTracks(abc.ABC):
    """Summaries (create, enqueue, read, history_for_model) and track events, on every backend."""

    options: ServiceOptions
    _summary_jobs: SummaryJobs | None = None

    # ------------------------------------------------------------------ summaries

    @operation("write")
    async def create_session_summary(
        self, session: Session | Key, filter_key: str = "", force: bool = False
    ) -> SummaryResult:
        """Summarize the events the stored summary (of ``filter_key``) does not cover yet, now.

        Asks the summarizer's ``should_summarize`` first unless ``force``; passes
        it the previous summary (incremental). ``result.status`` says what
        happened; with no summarizer configured it is ``no_summarizer`` (a no-op).
        """
        key, filter_key = _summary_args(session, filter_key)
        if self.options.summarizer is None:
            return SummaryResult("no_summarizer")
        return await self._run_summary(key, filter_key, bool(force))

    @operation("write")
    async def enqueue_summary_job(self, session: Session | Key, filter_key: str = "", force: bool = False) -> SummaryJob:
        """Hand a summary run to the worker pool; returns at once (unless the queue is full:
        then the job runs in the caller). ``await job.result()`` waits for it. A job
        for a (session, filter key) that already has one queued is merged into it."""
        key, filter_key = _summary_args(session, filter_key)
        if self.options.summarizer is None:
            return finished("no_summarizer", SummaryResult("no_summarizer"))
        if self._summary_jobs is None:
            timeout = self.options.summary_job_timeout
            self._summary_jobs = SummaryJobs(
                self._run_summary, workers=self.options.summary_workers, queue_size=self.options.summary_queue_size,
                timeout_s=None if timeout is None else timeout.total_seconds(),
            )
        return await self._summary_jobs.submit(key, filter_key, bool(force))

    @property
    def summary_errors(self) -> int:
        """Summary jobs that failed or timed out since the service started."""
        return 0 if self._summary_jobs is None else self._summary_jobs.errors

    @operation("read")
    async def get_session_summary_text(self, session: Session | Key, filter_key: str = "") -> str | None:
        """The stored summary of ``filter_key``, else the whole-session one (key ""), else None."""
        key, filter_key = _summary_args(session, filter_key)
        now = self._now()
        stored = await self._get_summary(key, filter_key, now)
        if stored is None and filter_key:
            stored = await self._get_summary(key, "", now)
        return None if stored is None else stored.text

    @operation("read")
    async def history_for_model(self, key: Key, max_events: int | None = None) -> ModelHistory:
        """(whole-session summary text or None, the events after the last one it covers).

        ``max_events`` keeps the newest of those (never more than event_limit).
        Raises SessionNotFoundError if the session is not active.
        """
        key = _session_key(key)
        limit = self.options.events_read_limit()
        if max_events is not None:
            if type(max_events) is not int or max_events < 0:
                raise InvalidArgumentError(f"max_events must be an int >= 0, got {max_events!r}")
            limit = min(limit, max_events)
        now = self._now()
        stored = await self._get_summary(key, "", now)
        events = await self._events_after(key, 0 if stored is None else stored.through_seq, limit, now)
        if events is None:
            raise SessionNotFoundError(f"session {key.session_id!r} not found")
        return ModelHistory(None if stored is None else stored.text, events)

    async def _run_summary(self, key: Key, filter_key: str, force: bool) -> SummaryResult:
        """One summary run (create_session_summary and the jobs): read what is new, ask, write."""
        summarizer = self.options.summarizer
        now = self._now()
        view = await self._get_session(key, 0, None, now)
        if view is None:
            return SummaryResult("session_not_found")
        previous = await self._get_summary(key, filter_key, now)
        events = await self._events_after(key, 0 if previous is None else previous.through_seq, self.options.events_read_limit(), now)
        if events is None:
            return SummaryResult("session_not_found")
        selected = select_events(events, filter_key)
        if not selected:
            return SummaryResult("up_to_date")
        view.events = selected
        if not force and not summarizer.should_summarize(view):
            return SummaryResult("not_triggered")
        text = await summarizer.summarize(view, selected, None if previous is None else previous.text)
        if not isinstance(text, str):
            raise InvalidArgumentError(f"summarizer.summarize must return a str, got {type(text).__name__}")
        stored = StoredSummary(text, events[-1].seq or 0, self._now())
        if not await self._put_summary(key, filter_key, stored, self._now()):
            return SummaryResult("session_not_found")
        return SummaryResult("created", stored)

    async def _close_summary_jobs(self) -> None:
        jobs, self._summary_jobs = self._summary_jobs, None
        if jobs is not None:
            await jobs.close()

    # ------------------------------------------------------------------ track events

    @operation("write")
    async def append_track_event(
        self, session: Session | Key, track: str, payload: Any, timestamp: datetime | None = None
    ) -> TrackEvent:
        """Store a record on a named track of the session (next seq of that track). The
        session's state, version and events are untouched. Raises SessionNotFoundError
        if the session is not active."""
        key = _session_key(session)
        now = self._now()
        track, payload, stamp = prepare_track_event(
            track, payload, now if timestamp is None else timestamp, self.options.max_event_bytes
        )
        return await self._append_track_event(key, track, payload, stamp, now)

    @operation("read")
    async def get_track_events(
        self, key: Session | Key, track: str, *, limit: int = 100, after: int | datetime | None = None
    ) -> list[TrackEvent]:
        """A track's records in seq order: the first ``limit`` after ``after`` (a seq, exclusive,
        to page on; or a datetime, inclusive: timestamp >= after). [] if the session is not active."""
        key = _session_key(key)
        check_identifier(track, "track", error=InvalidArgumentError)
        if type(limit) is not int or not 1 <= limit <= MAX_TRACK_PAGE:
            raise InvalidArgumentError(f"limit must be an int from 1 to {MAX_TRACK_PAGE}, got {limit!r}")
        after_seq, after_time = check_after(after)
        return await self._get_track_events(key, track, limit, after_seq, after_time, self._now())

    @operation("read")
    async def list_tracks(self, key: Session | Key) -> list[str]:
        """The names of the session's tracks that hold records, sorted. [] if the session is not active."""
        return await self._list_tracks(_session_key(key), self._now())

    # ------------------------------------------------------------------ backend work

    @abc.abstractmethod
    def _now(self) -> datetime: ...

    @abc.abstractmethod
    async def _get_session(self, key: Key, limit: int, after: datetime | None, now: datetime) -> Session | None: ...

    @abc.abstractmethod
    async def _get_summary(self, key: Key, filter_key: str, now: datetime) -> StoredSummary | None:
        """The stored summary of an active session for this filter key, or None."""

    @abc.abstractmethod
    async def _put_summary(self, key: Key, filter_key: str, summary: StoredSummary, now: datetime) -> bool:
        """Store (insert or replace) the summary unless a stored one covers more events;
        False if the session is not active."""

    @abc.abstractmethod
    async def _events_after(self, key: Key, after_seq: int, limit: int, now: datetime) -> list[Event] | None:
        """The newest ``limit`` events with seq > after_seq, in seq order; None if the session is not active."""

    @abc.abstractmethod
    async def _append_track_event(
        self, key: Key, track: str, payload: Any, timestamp: datetime, now: datetime
    ) -> TrackEvent: ...

    @abc.abstractmethod
    async def _get_track_events(
        self, key: Key, track: str, limit: int, after_seq: int | None, after_time: datetime | None, now: datetime
    ) -> list[TrackEvent]: ...

    @abc.abstractmethod
    async def _list_tracks(self, key: Key, now: datetime) -> list[str]: ...


def _session_key(session: object) -> Key:
    if isinstance(session, Session):
        return Key(session.app_name, session.user_id, session.id).require_session_id()
    if isinstance(session, Key):
        return session.require_session_id()
    raise InvalidKeyError(f"expected a Session or a Key, got {type(session).__name__}")


def _summary_args(session: object, filter_key: object) -> tuple[Key, str]:
    key = _session_key(session)
    if filter_key != "":
        check_identifier(filter_key, "filter_key", error=InvalidArgumentError)
    return key, filter_key  # type: ignore[return-value]  # checked: "" or an identifier
