"""Summaries on every backend: stored and read back, incremental, the filter-key rule and the
fallback to the whole-session summary, triggers, history_for_model, the job pool (coalescing,
one run at a time per session and filter key, timeouts, failures, queue-full inline fallback),
no summarizer = no-op, and summaries vanishing with their session (delete, TTL, cleanup).

The summarizer is a deterministic test implementation (below), not a mock of any storage."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

import sessionstore as ss
from sessionstore.summaries import all_of, any_of, every_n_events, idle_for, text_exceeds, tokens_exceed
from tests.backends import SQLBackend

from .helpers import event, key, new_session


class JoiningSummarizer:
    """Summary = the previous summary, "+", then the new events' contents joined by "|".

    Records every call; optionally waits on a per-session gate, sleeps, or raises.
    """

    def __init__(self, trigger: Any = None, *, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.trigger = trigger
        self.delay = delay
        self.fail = fail
        self.calls: list[tuple[str, list[int | None], str | None]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}
        self.running = 0
        self.max_running = 0

    def gate(self, session_id: str) -> asyncio.Event:
        self.entered[session_id] = asyncio.Event()
        self.gates[session_id] = asyncio.Event()
        return self.gates[session_id]

    async def summarize(self, session: ss.Session, events: list[ss.Event], previous: str | None) -> str:
        self.calls.append((session.id, [e.seq for e in events], previous))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if session.id in self.gates:
                self.entered[session.id].set()
                await self.gates[session.id].wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail is not None:
                raise self.fail
            text = "|".join(str(e.content) for e in events)
            return f"{previous}+{text}" if previous else text
        finally:
            self.running -= 1

    def should_summarize(self, session: ss.Session) -> bool:
        return True if self.trigger is None else bool(self.trigger(session))


async def add(svc: ss.SessionService, session: ss.Session, *contents: str, branch: str | None = None) -> None:
    for content in contents:
        await svc.append_event(session, event(content=content, branch=branch))


# ---------------------------------------------------------------- stored, read back, incremental


async def test_summary_is_stored_and_read_back(make_service, backend):
    summarizer = JoiningSummarizer()
    svc = await make_service(summarizer=summarizer)
    s = await new_session(svc, "s1")
    await add(svc, s, "a", "b", "c")

    result = await svc.create_session_summary(s)
    assert result.status == "created" and result.created
    assert result.summary is not None and result.summary.text == "a|b|c" and result.summary.through_seq == 3
    assert await svc.get_session_summary_text(s) == "a|b|c"
    assert await svc.get_session_summary_text(key("s1")) == "a|b|c"
    assert summarizer.calls == [("s1", [1, 2, 3], None)]
    if backend.shared_storage:  # another service on the same database reads it too
        other = await make_service()
        assert await other.get_session_summary_text(key("s1")) == "a|b|c"


async def test_summaries_are_incremental(make_service):
    summarizer = JoiningSummarizer()
    svc = await make_service(summarizer=summarizer)
    s = await new_session(svc, "s1")
    await add(svc, s, "a", "b")
    assert (await svc.create_session_summary(s)).created
    assert (await svc.create_session_summary(s)).status == "up_to_date"
    await add(svc, s, "c", "d")

    result = await svc.create_session_summary(s)
    assert result.summary is not None and result.summary.through_seq == 4
    assert summarizer.calls[-1] == ("s1", [3, 4], "a|b")
    assert await svc.get_session_summary_text(s) == "a|b+c|d"
    assert len(summarizer.calls) == 2


async def test_history_for_model_gives_the_summary_and_the_events_after_it(make_service):
    svc = await make_service(summarizer=JoiningSummarizer())
    s = await new_session(svc, "s1")
    await add(svc, s, "a", "b", "c")
    history = await svc.history_for_model(key("s1"))
    assert history.summary is None and [e.content for e in history.events] == ["a", "b", "c"]

    await svc.create_session_summary(s)
    await add(svc, s, "d", "e", "f")
    summary, events = await svc.history_for_model(key("s1"))
    assert summary == "a|b|c" and [e.seq for e in events] == [4, 5, 6]
    assert [e.content for e in (await svc.history_for_model(key("s1"), max_events=2)).events] == ["e", "f"]
    assert (await svc.history_for_model(key("s1"), max_events=0)).events == []


async def test_filter_key_selects_branch_and_sub_branches_and_falls_back(make_service):
    summarizer = JoiningSummarizer()
    svc = await make_service(summarizer=summarizer)
    s = await new_session(svc, "s1")
    await add(svc, s, "r", branch="root")
    await add(svc, s, "ra", branch="root.a")
    await add(svc, s, "rt", branch="root/tool")
    await add(svc, s, "x", branch="rootless")
    await add(svc, s, "none")

    assert (await svc.create_session_summary(s, filter_key="root")).created
    assert summarizer.calls[-1] == ("s1", [1, 2, 3], None)
    assert await svc.get_session_summary_text(s, filter_key="root") == "r|ra|rt"
    # No summary for "rootless" yet, and none for the whole session: None.
    assert await svc.get_session_summary_text(s, filter_key="rootless") is None
    assert (await svc.create_session_summary(s)).created
    assert await svc.get_session_summary_text(s, filter_key="rootless") == "r|ra|rt|x|none"  # the fallback
    assert await svc.get_session_summary_text(s, filter_key="root") == "r|ra|rt"
    # A filter key with nothing new since its summary: up to date, even when other branches moved on.
    await add(svc, s, "y", branch="other")
    assert (await svc.create_session_summary(s, filter_key="root")).status == "up_to_date"


async def test_triggers_decide_unless_forced(make_service, clock):
    trigger = any_of(every_n_events(3), all_of(text_exceeds(10), tokens_exceed(2)))
    summarizer = JoiningSummarizer(trigger)
    svc = await make_service(summarizer=summarizer)
    s = await new_session(svc, "s1")
    await add(svc, s, "a", "b")
    assert (await svc.create_session_summary(s)).status == "not_triggered"
    assert summarizer.calls == []
    assert (await svc.create_session_summary(s, force=True)).created
    await add(svc, s, "0123456789ab")  # one event, but 12 characters (3 tokens)
    assert (await svc.create_session_summary(s)).created
    await add(svc, s, "c", "d", "e")
    assert (await svc.create_session_summary(s)).created


def test_trigger_helpers_on_a_session_view():
    view = ss.Session("s", "a", "u", events=[event(content="hello"), event(content={"k": "v"})])
    assert every_n_events(2)(view) and not every_n_events(3)(view)
    assert text_exceeds(10)(view) and not text_exceeds(20)(view)  # "hello" + '{"k":"v"}' = 14 characters
    assert tokens_exceed(3)(view) and not tokens_exceed(3, lambda text: 1)(view)
    stamp = view.events[-1].timestamp
    assert idle_for(timedelta(minutes=5), clock=lambda: stamp + timedelta(minutes=5))(view)
    assert not idle_for(timedelta(minutes=5), clock=lambda: stamp + timedelta(minutes=4))(view)
    assert not all_of()(view) and not any_of()(view)
    with pytest.raises(ss.InvalidArgumentError):
        every_n_events(0)


async def test_without_a_summarizer_the_calls_are_no_ops(svc):
    s = await new_session(svc, "s1")
    await add(svc, s, "a")
    assert (await svc.create_session_summary(s)).status == "no_summarizer"
    job = await svc.enqueue_summary_job(s)
    assert job.disposition == "no_summarizer" and job.done()
    assert (await job.result()).status == "no_summarizer"
    assert await svc.get_session_summary_text(s) is None
    assert (await svc.history_for_model(key("s1"))).summary is None


async def test_summary_of_a_missing_session(make_service):
    svc = await make_service(summarizer=JoiningSummarizer())
    assert (await svc.create_session_summary(key("nope"))).status == "session_not_found"
    assert await svc.get_session_summary_text(key("nope")) is None
    with pytest.raises(ss.SessionNotFoundError):
        await svc.history_for_model(key("nope"))


async def test_bad_summary_arguments_are_refused(make_service):
    svc = await make_service(summarizer=JoiningSummarizer())
    s = await new_session(svc, "s1")
    for bad in ("", None, 3, "x" * 200, "a\x00b"):
        if bad == "":
            continue
        with pytest.raises(ss.InvalidArgumentError):
            await svc.create_session_summary(s, filter_key=bad)
        with pytest.raises(ss.InvalidArgumentError):
            await svc.get_session_summary_text(s, filter_key=bad)
    with pytest.raises(ss.InvalidKeyError):
        await svc.enqueue_summary_job("s1")  # type: ignore[arg-type]
    with pytest.raises(ss.InvalidKeyError):
        await svc.history_for_model(key(""))
    for bad_count in (-1, 1.5, "3"):
        with pytest.raises(ss.InvalidArgumentError):
            await svc.history_for_model(key("s1"), max_events=bad_count)
    for options in ({"summary_workers": 0}, {"summary_queue_size": 0}, {"summary_job_timeout": 5},
                    {"summarizer": object()}):
        with pytest.raises(ss.ConfigurationError):
            ss.ServiceOptions(**options)


async def test_a_failing_summarizer_raises_to_the_direct_caller(make_service):
    svc = await make_service(summarizer=JoiningSummarizer(fail=RuntimeError("model down")))
    s = await new_session(svc, "s1")
    await add(svc, s, "a")
    with pytest.raises(RuntimeError, match="model down"):
        await svc.create_session_summary(s)
    assert await svc.get_session_summary_text(s) is None


# ---------------------------------------------------------------- the job pool


async def test_enqueued_job_stores_the_summary(make_service):
    svc = await make_service(summarizer=JoiningSummarizer())
    s = await new_session(svc, "s1")
    await add(svc, s, "a", "b")
    job = await svc.enqueue_summary_job(s)
    assert job.disposition == "queued"
    result = await job.result()
    assert result.created and await svc.get_session_summary_text(s) == "a|b"


async def test_concurrent_enqueue_for_one_session_summarizes_once(make_service):
    summarizer = JoiningSummarizer()
    svc = await make_service(summarizer=summarizer)
    s = await new_session(svc, "s1")
    await add(svc, s, "a", "b")
    jobs = await asyncio.gather(*(svc.enqueue_summary_job(s) for _ in range(10)))
    results = [await job.result() for job in jobs]
    assert [job.disposition for job in jobs].count("queued") == 1
    assert len(summarizer.calls) == 1
    assert sum(r.created for r in results) == len(results)  # coalesced jobs share the one result
    assert await svc.get_session_summary_text(s) == "a|b"


async def test_a_job_asked_for_while_one_runs_waits_for_it(make_service):
    summarizer = JoiningSummarizer()
    svc = await make_service(summarizer=summarizer, summary_workers=4)
    s = await new_session(svc, "s1")
    await add(svc, s, "a")
    release = summarizer.gate("s1")
    first = await svc.enqueue_summary_job(s)
    await summarizer.entered["s1"].wait()
    await add(svc, s, "b")
    second = await svc.enqueue_summary_job(s)
    third = await svc.enqueue_summary_job(s)
    assert (second.disposition, third.disposition) == ("queued", "coalesced")
    await asyncio.sleep(0.05)
    assert summarizer.max_running == 1 and not second.done()
    release.set()
    assert (await first.result()).created and (await second.result()).created
    assert summarizer.max_running == 1
    assert [call[1:] for call in summarizer.calls] == [([1], None), ([2], "a")]
    assert await svc.get_session_summary_text(s) == "a+b"


async def two_jobs_running(make_service: Any) -> tuple[ss.SessionService, JoiningSummarizer, list[Any], list[asyncio.Event]]:
    """Two workers, each inside a summary job of its own session, held at that session's gate:
    (the service, the summarizer, the jobs, the gates)."""
    summarizer = JoiningSummarizer()
    svc = await make_service(summarizer=summarizer, summary_workers=2)
    sessions = [await new_session(svc, f"s{i}") for i in range(2)]
    gates = [summarizer.gate(s.id) for s in sessions]
    for s in sessions:
        await add(svc, s, "x")
    jobs = [await svc.enqueue_summary_job(s) for s in sessions]
    await asyncio.wait_for(asyncio.gather(*(summarizer.entered[s.id].wait() for s in sessions)), 5)
    return svc, summarizer, jobs, gates


async def test_jobs_for_different_sessions_run_in_parallel(make_service):
    svc, summarizer, jobs, gates = await two_jobs_running(make_service)
    assert summarizer.max_running == 2
    for gate in gates:
        gate.set()
    assert all([(await job.result()).created for job in jobs])


async def test_a_job_that_takes_too_long_times_out(make_service):
    summarizer = JoiningSummarizer(delay=5)
    svc = await make_service(summarizer=summarizer, summary_job_timeout=timedelta(milliseconds=50))
    s = await new_session(svc, "s1")
    await add(svc, s, "a")
    result = await asyncio.wait_for((await svc.enqueue_summary_job(s)).result(), 3)
    assert result.status == "timed_out" and isinstance(result.error, asyncio.TimeoutError)
    assert svc.summary_errors == 1
    assert await svc.get_session_summary_text(s) is None


async def test_a_failed_job_says_so(make_service):
    svc = await make_service(summarizer=JoiningSummarizer(fail=RuntimeError("model down")))
    s = await new_session(svc, "s1")
    await add(svc, s, "a")
    result = await (await svc.enqueue_summary_job(s)).result()
    assert result.status == "failed" and isinstance(result.error, RuntimeError)
    assert svc.summary_errors == 1


async def test_a_full_queue_runs_the_job_inline(make_service):
    summarizer = JoiningSummarizer()
    svc = await make_service(summarizer=summarizer, summary_workers=1, summary_queue_size=1)
    s1, s2, s3 = [await new_session(svc, f"s{i}") for i in (1, 2, 3)]
    for s in (s1, s2, s3):
        await add(svc, s, s.id)
    release = summarizer.gate("s1")
    busy = await svc.enqueue_summary_job(s1)
    await summarizer.entered["s1"].wait()  # the one worker is busy
    waiting = await svc.enqueue_summary_job(s2)  # fills the queue
    inline = await svc.enqueue_summary_job(s3)
    assert (busy.disposition, waiting.disposition, inline.disposition) == ("queued", "queued", "ran_inline")
    assert inline.done() and (await inline.result()).created
    assert await svc.get_session_summary_text(s3) == "s3"
    release.set()
    assert (await busy.result()).created and (await waiting.result()).created


async def test_close_cancels_jobs_not_finished(make_service):
    summarizer = JoiningSummarizer()
    svc = await make_service(summarizer=summarizer)
    s = await new_session(svc, "s1")
    await add(svc, s, "a")
    summarizer.gate("s1")
    job = await svc.enqueue_summary_job(s)
    await summarizer.entered["s1"].wait()
    await svc.close()
    assert (await job.result()).status == "cancelled"


async def test_close_as_jobs_finish_does_not_hang(make_service):
    """A cancellation arriving as a job finishes can be swallowed (asyncio.wait_for before
    Python 3.12): close() cancels until the workers are gone."""
    svc, _, jobs, gates = await two_jobs_running(make_service)
    for gate in gates:
        gate.set()
    await asyncio.wait_for(svc.close(), 10)
    assert {(await job.result()).status for job in jobs} <= {"cancelled", "created"}


# ---------------------------------------------------------------- lifetime


async def test_summaries_vanish_with_their_session(make_service):
    svc = await make_service(summarizer=JoiningSummarizer())
    s = await new_session(svc, "s1")
    await add(svc, s, "a")
    await svc.create_session_summary(s)
    await svc.create_session_summary(s, filter_key="b")
    await svc.delete_session(key("s1"))
    assert await svc.get_session_summary_text(key("s1")) is None
    assert await svc.get_session_summary_text(key("s1"), filter_key="b") is None
    await new_session(svc, "s1")  # the id again: a new session without the old summary
    assert await svc.get_session_summary_text(key("s1")) is None
    assert (await svc.history_for_model(key("s1"))).summary is None


@pytest.mark.parametrize("soft_delete", [True, False])
async def test_summaries_expire_with_their_session_and_go_at_cleanup(make_service, backend, clock, soft_delete):
    svc = await make_service(
        summarizer=JoiningSummarizer(), session_ttl=timedelta(minutes=10), soft_delete=soft_delete,
        tombstone_retention=timedelta(minutes=1),
    )
    s = await new_session(svc, "s1")
    await add(svc, s, "a")
    await svc.create_session_summary(s)
    assert await summary_rows(backend) in (None, 1)
    clock.advance(minutes=11)
    assert await svc.get_session_summary_text(key("s1")) is None
    await svc.cleanup()
    clock.advance(minutes=2)
    await svc.cleanup()  # (soft delete: the tombstone goes with its summary now)
    assert await summary_rows(backend) in (None, 0)


async def summary_rows(backend: Any) -> int | None:
    """Rows in the summaries table (None on the memory backend, which has no table to count)."""
    if not isinstance(backend, SQLBackend):
        return None
    from sessionstore.sql.service import SQLSessionService

    probe = ss.open_service(backend.engine)
    assert isinstance(probe, SQLSessionService)
    async with backend.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(probe.tables.summaries))).scalar_one())
