"""Write-behind persistence (``async_persist=True``): appends return once queued, workers store them.

Why the store, not this queue, assigns ``seq``: the contract promises a
gap-free per-session seq across every process writing to the database, and
only the database sees all of them. A number handed out here before the row
exists would either collide with another process's append or, if reserved in
blocks, leave gaps. So a queued event is returned with ``seq=None``, and the
worker fills the seq in (on the returned Event, on the copy in the caller's
Session, and the Session's version) the moment the row commits. What the
queue does fix at enqueue time is this process's order: one session always
maps to one worker, which stores its events one at a time, in order.

Failures are never only logged: each is counted (``failed``), kept (the
first ``KEEP_FAILURES``) and raised as one PersistError by the next
``report()`` (flush/close). A session whose queued write failed is
"poisoned": its later queued events are not stored either (so what is
durable is always a prefix of what this process appended to it), and
appending to it raises until the failure has been reported.

Reads of a session with queued events hold that session's lock, so the
worker cannot commit one of them mid-read: the read sees exactly the events
committed before it, and ``overlay`` adds the rest.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import PersistError
from .events import PreparedEvent
from .keys import Key
from .records import Event, Session
from .state import apply_delta

log = logging.getLogger("sessionstore.writebehind")

KEEP_FAILURES = 100
"""Failures kept for the PersistError (all of them are counted)."""

Store = Callable[[Key, PreparedEvent, "int | None", datetime, int], Awaitable[tuple[Event, int, bool]]]


@dataclass(slots=True, eq=False)
class Job:
    """One queued append and the caller's objects its seq is filled into once stored."""

    key: Key
    prepared: PreparedEvent
    now: datetime
    known_version: int
    returned: Event
    session: Session
    in_session: Event | None
    stored: bool = False
    ticket: int = 0
    """Its place in its worker's queue (1, 2, ...), once queued; 0 while waiting for room."""


@dataclass(slots=True, eq=False)
class _Pending:
    """A session's queued jobs (oldest first) and the lock its reads and its worker share."""

    jobs: deque[Job] = field(default_factory=deque)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WriteBehind:
    """The queues and workers of one service."""

    def __init__(self, store: Store, workers: int, queue_size: int) -> None:
        self.store = store
        """What writes one queued event (the backend's _append_event; telemetry may wrap it)."""
        self._size = queue_size
        self._queues: list[asyncio.Queue[Job]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._workers = workers
        self._pending: dict[Key, _Pending] = {}
        self._queued = [0] * workers  # per worker: jobs queued so far (the last ticket given)
        self._done = [0] * workers  # per worker: jobs finished (stored or failed), in ticket order
        self._waiters: list[list[tuple[int, asyncio.Future[None]]]] = [[] for _ in range(workers)]
        self._put_locks = [asyncio.Lock() for _ in range(workers)]
        self._poisoned: set[Key] = set()
        self._failures: list[tuple[object, str, BaseException]] = []
        self._unreported = 0
        self.failed = 0
        """Failed queued writes since the service started (never reset)."""
        self.stored = 0
        """Queued writes stored since the service started."""

    @property
    def depth(self) -> int:
        """Queued events not yet stored (or failed)."""
        return sum(len(p.jobs) for p in self._pending.values())

    def check_session(self, key: Key) -> None:
        """Raise if an earlier queued write of this session failed and was not reported yet."""
        if key in self._poisoned:
            raise PersistError(
                f"an earlier queued write to session {key.session_id!r} failed; "
                "flush() raises the failure and lets appends to it resume",
                failures=list(self._failures), count=self._unreported,
            )

    async def append(
        self, session: Session, key: Key, prepared: PreparedEvent, caller_delta: dict[str, Any], now: datetime
    ) -> Event:
        """Queue an append; give the caller's Session the event (seq None until stored) at once.

        The Session's version counts the event now (as if nothing else wrote
        meanwhile); the worker sets the real one, and the seq, once stored.
        """
        self.check_session(key)
        in_session, returned = prepared.copy(), prepared.copy()
        await self._enqueue(Job(key, prepared, now, session.version, returned, session, in_session))
        # (no await between the job entering the queue and this: its worker cannot have run yet)
        session.events.append(in_session)
        apply_delta(session.state, caller_delta)
        session.version += 1
        session.updated_at = max(session.updated_at, now)
        return returned

    async def _enqueue(self, job: Job) -> None:
        """Queue `job` behind the session's earlier ones (waits while its worker's queue is full)."""
        if not self._tasks:
            self._start()
        pending = self._pending.get(job.key)
        if pending is None:
            pending = self._pending[job.key] = _Pending()
        pending.jobs.append(job)
        worker = hash(job.key) % self._workers
        try:
            # asyncio.Queue does not keep waiting putters in order against newcomers; the
            # (fair) lock does, so a session's events enter its worker's queue in order.
            async with self._put_locks[worker]:
                await self._queues[worker].put(job)
        except BaseException:  # cancelled while the queue was full: never queued
            pending.jobs.remove(job)
            self._forget_if_idle(job.key, pending)
            raise
        self._queued[worker] += 1
        job.ticket = self._queued[worker]

    async def read(
        self, key: Key, read: Callable[[], Awaitable[Session | None]], limit: int, after: datetime | None
    ) -> Session | None:
        """`read()` of a session, plus its queued events (read-your-writes; see overlay)."""
        pending = self._pending.get(key)
        if pending is None:
            return await read()
        async with pending.lock:  # no queued event of this session commits during the read
            jobs = [job for job in pending.jobs if not job.stored]
            found = await read()
        return None if found is None else overlay(found, jobs, limit, after)

    def pending_for(self, key: Key) -> _Pending | None:
        return self._pending.get(key)

    async def settle_session(self, key: Key) -> None:
        """Wait until the session's events queued so far are finished (errors are left for report())."""
        pending = self._pending.get(key)
        queued = [job for job in pending.jobs if job.ticket] if pending is not None else []
        if queued:
            await self._reach(hash(key) % self._workers, queued[-1].ticket)

    async def settle(self) -> None:
        """Wait until every event queued so far is finished (errors are left for report()).

        Events queued meanwhile are not waited for, so a steady stream of
        appends from other tasks cannot keep a flush waiting for ever.
        """
        await asyncio.gather(*(self._reach(w, self._queued[w]) for w in range(self._workers)))

    async def _reach(self, worker: int, ticket: int) -> None:
        """Wait until `worker` has finished its job number `ticket`."""
        if self._done[worker] >= ticket:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters[worker].append((ticket, future))
        await future

    def report(self) -> None:
        """Raise one PersistError for the failures since the last report, and clear them."""
        if not self._unreported:
            return
        failures, count = self._failures, self._unreported
        self._failures, self._unreported = [], 0
        # A session with events still queued behind its failure stays stopped until they have
        # failed too (the next report): none of them may be stored after the gap.
        self._poisoned = {key for key in self._poisoned if key in self._pending}
        first_key, first_id, first = failures[0]
        raise PersistError(
            f"{count} queued write(s) failed since the last flush; the first, event {first_id!r} "
            f"of {first_key}: {type(first).__name__}: {first}",
            failures=failures, count=count,
        ) from first

    async def close(self) -> None:
        """Store what is queued, then stop the workers."""
        await self.settle()
        tasks, self._tasks, self._queues = self._tasks, [], []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ workers

    def _start(self) -> None:
        self._queues = [asyncio.Queue(self._size) for _ in range(self._workers)]
        self._tasks = [
            # a fresh context: not the telemetry of the append that happened to start them
            contextvars.Context().run(asyncio.create_task, self._work(n, queue), name=f"sessionstore-persist-{n}")
            for n, queue in enumerate(self._queues)
        ]

    async def _work(self, worker: int, queue: asyncio.Queue[Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._persist(job)
            finally:
                queue.task_done()
                self._done[worker] += 1
                waiting = self._waiters[worker]
                if waiting:
                    self._waiters[worker] = [(t, f) for t, f in waiting if t > self._done[worker]]
                    for ticket, future in waiting:
                        if ticket <= self._done[worker] and not future.done():
                            future.set_result(None)

    async def _persist(self, job: Job) -> None:
        pending = self._pending[job.key]
        try:
            async with pending.lock:
                if job.key in self._poisoned:
                    raise PersistError(
                        "not stored: an earlier queued write of this session failed", failures=[], count=0
                    )
                stored, version, _ = await self.store(job.key, job.prepared, None, job.now, job.known_version)
                job.stored = True
                job.returned.seq = stored.seq
                if job.in_session is not None:
                    job.in_session.seq = stored.seq
                job.session.version = max(job.session.version, version)
                self.stored += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is counted and re-raised by report()
            self._fail(job, exc)
        finally:
            pending.jobs.popleft()
            self._forget_if_idle(job.key, pending)

    def _forget_if_idle(self, key: Key, pending: _Pending) -> None:
        if not pending.jobs and self._pending.get(key) is pending:
            del self._pending[key]

    def _fail(self, job: Job, exc: Exception) -> None:
        self.failed += 1
        self._unreported += 1
        self._poisoned.add(job.key)
        if len(self._failures) < KEEP_FAILURES:
            self._failures.append((job.key, job.returned.id, exc))
        log.warning(
            "queued write of event %r to session %r failed (%s); flush() will raise it",
            job.returned.id, job.key.session_id, type(exc).__name__,
        )


def overlay(session: Session, jobs: list[Job], limit: int, after: datetime | None) -> Session:
    """`session` as read from storage, plus the queued `jobs` not stored when it was read.

    Their events come after the stored ones (newest), subject to the same
    `limit` and `after`; their deltas (temp: keys excepted) apply to the
    merged state; the version counts them as if nothing else wrote meanwhile.
    """
    for job in jobs:
        apply_delta(session.state, job.prepared.event.state_delta)
        if after is None or job.prepared.event.timestamp >= after:
            session.events.append(job.prepared.copy())
        session.version += 1
        session.updated_at = max(session.updated_at, job.now)
    if len(session.events) > limit:
        del session.events[: len(session.events) - limit]
    return session
