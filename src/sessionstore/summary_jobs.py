"""The summary worker pool behind ``enqueue_summary_job``.

``summary_workers`` tasks take jobs from a queue of ``summary_queue_size``;
each job runs ``create_session_summary`` under ``summary_job_timeout``. Why
this shape (as the reference system's):

- a summary calls a model, which takes seconds: callers should not wait for it;
- a full queue means the workers are behind: the caller then runs its job
  inline (it waits, which slows producers down) rather than losing it;
- two jobs for one (session, filter key) never run at once: a job asked for
  while another one for the same pair is still queued is merged into it
  (the caller gets the same job), and one asked for while one runs waits
  for it (a per-pair lock), then summarizes only what is new.

A job's failure is never only logged: its ``SummaryJob.result()`` says
``failed`` or ``timed_out`` with the error, and ``errors`` counts them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from .keys import Key
from .summaries import SummaryResult

log = logging.getLogger("sessionstore.summaries")

JobKey = tuple[Key, str]
Disposition = Literal["queued", "coalesced", "ran_inline", "no_summarizer"]
RunSummary = Callable[[Key, str, bool], Awaitable[SummaryResult]]


@dataclass(eq=False)
class _Job:
    key: JobKey
    force: bool
    future: asyncio.Future[SummaryResult]


@dataclass(frozen=True)
class SummaryJob:
    """A handle on an enqueued summary job.

    ``disposition``: ``queued`` (a worker will run it), ``coalesced`` (merged
    into a job already queued for this session and filter key: same result),
    ``ran_inline`` (the queue was full, so it ran in the caller, already
    done), or ``no_summarizer`` (nothing to do: the service has no summarizer).
    """

    disposition: Disposition
    _future: asyncio.Future[SummaryResult] = field(repr=False)

    def done(self) -> bool:
        return self._future.done()

    async def result(self) -> SummaryResult:
        """Wait for the job; its SummaryResult (``failed``/``timed_out``/``cancelled`` carry ``error``)."""
        return await asyncio.shield(self._future)


def finished(disposition: Disposition, result: SummaryResult) -> SummaryJob:
    """A SummaryJob that is already done."""
    future: asyncio.Future[SummaryResult] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return SummaryJob(disposition, future)


class SummaryJobs:
    """The queue, its workers (started on first use) and the per-(session, filter key) coalescing."""

    def __init__(self, run: RunSummary, *, workers: int, queue_size: int, timeout_s: float | None) -> None:
        self._run = run
        self._workers_wanted = workers
        self._queue_size = queue_size
        self._timeout_s = timeout_s
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._pending: dict[JobKey, _Job] = {}
        self._locks: dict[JobKey, asyncio.Lock] = {}
        self.errors = 0
        """Jobs that failed or timed out since the service started."""

    async def submit(self, key: Key, filter_key: str, force: bool) -> SummaryJob:
        job_key = (key, filter_key)
        job = self._pending.get(job_key)
        if job is not None:
            job.force = job.force or force
            return SummaryJob("coalesced", job.future)
        job = _Job(job_key, force, asyncio.get_running_loop().create_future())
        self._pending[job_key] = job
        queue = self._started()
        try:
            queue.put_nowait(job)
        except asyncio.QueueFull:
            await self._execute(job)
            return SummaryJob("ran_inline", job.future)
        return SummaryJob("queued", job.future)

    async def close(self) -> None:
        """Stop the workers; jobs not finished yet end as ``cancelled``."""
        pending, self._workers = set(self._workers), []
        while pending:
            # Cancelled again until done: asyncio.wait_for (Python < 3.12) may swallow a
            # cancellation that arrives as the job finishes, and the worker would wait on.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1)
        for job in list(self._pending.values()):
            _settle(job, SummaryResult("cancelled"))
        self._pending.clear()
        self._queue = None

    def _started(self) -> asyncio.Queue[_Job]:
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
            self._workers = [
                asyncio.create_task(self._work(self._queue), name=f"sessionstore-summary-{i}")
                for i in range(self._workers_wanted)
            ]
        return self._queue

    async def _work(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._execute(job)
            finally:
                queue.task_done()

    async def _execute(self, job: _Job) -> None:
        lock = self._locks.setdefault(job.key, asyncio.Lock())
        try:
            async with lock:
                # From here on a new request for this pair is a new job (it waits for this one).
                if self._pending.get(job.key) is job:
                    del self._pending[job.key]
                result = await self._attempt(job)
        except asyncio.CancelledError:
            _settle(job, SummaryResult("cancelled"))
            raise
        finally:
            if job.key not in self._pending and not lock.locked():
                self._locks.pop(job.key, None)
        _settle(job, result)

    async def _attempt(self, job: _Job) -> SummaryResult:
        key, filter_key = job.key
        try:
            return await asyncio.wait_for(self._run(key, filter_key, job.force), self._timeout_s)
        except asyncio.TimeoutError as exc:  # (TimeoutError itself from Python 3.11 on)
            self.errors += 1
            log.warning("summary job for session %s timed out after %ss", key.session_id, self._timeout_s)
            return SummaryResult("timed_out", error=exc)
        except Exception as exc:  # noqa: BLE001 - the job's result carries it (SummaryJob.result())
            self.errors += 1
            log.warning("summary job for session %s failed: %r", key.session_id, exc)
            return SummaryResult("failed", error=exc)


def _settle(job: _Job, result: SummaryResult) -> None:
    if not job.future.done():
        job.future.set_result(result)
