"""Hooks on every backend: append_event_hooks and get_session_hooks run as middleware in the
order given; they may change the event or key, short-circuit (nothing stored, the caller gets
what the hook returned) or post-process; their errors propagate unchanged and store nothing."""

from __future__ import annotations

from typing import Any

import pytest

import sessionstore as ss
from sessionstore.hooks import AppendEventContext, GetSessionContext

from .helpers import event, key, must_get, new_session, snapshot


def recorder(name: str, log: list[str]) -> Any:
    async def hook(ctx: Any, next: Any) -> Any:
        log.append(f"{name}>")
        result = await next()
        log.append(f"<{name}")
        return result

    return hook


async def test_hooks_run_in_order_first_outermost(make_service):
    log: list[str] = []
    svc = await make_service(
        append_event_hooks=[recorder("a", log), recorder("b", log)],
        get_session_hooks=[recorder("r1", log), recorder("r2", log)],
    )
    s = await new_session(svc, "s1")
    stored = await svc.append_event(s, event(content="hi"))
    assert log == ["a>", "b>", "<b", "<a"] and stored.seq == 1
    log.clear()
    await must_get(svc, key("s1"))
    assert log == ["r1>", "r2>", "<r2", "<r1"]


async def test_an_append_hook_may_change_the_event(make_service):
    async def stamp(ctx: AppendEventContext, next: Any) -> ss.Event:
        ctx.event.metadata = {**ctx.event.metadata, "stamped": True}
        ctx.event.content = str(ctx.event.content).upper()
        return await next()

    svc = await make_service(append_event_hooks=[stamp])
    s = await new_session(svc, "s1")
    stored = await svc.append_event(s, event(content="hi"))
    assert stored.content == "HI" and stored.metadata == {"stamped": True}
    got = await must_get(svc, key("s1"))
    assert [(e.content, e.metadata) for e in got.events] == [("HI", {"stamped": True})]
    assert s.events[-1].content == "HI"


async def test_an_append_hook_may_send_the_event_to_another_session(make_service):
    async def redirect(ctx: AppendEventContext, next: Any) -> ss.Event:
        ctx.key = key("audit")
        return await next()

    svc = await make_service(append_event_hooks=[redirect])
    s = await new_session(svc, "s1")
    await new_session(svc, "audit")
    await svc.append_event(s, event(content="x", state_delta={"k": 1}))
    assert (await must_get(svc, key("s1"))).events == []
    audit = await must_get(svc, key("audit"))
    assert [e.content for e in audit.events] == ["x"] and audit.state == {"k": 1}
    assert s.events == [] and s.version == 0  # the caller's object describes s1, which did not change


async def test_an_append_hook_may_short_circuit(make_service):
    async def drop_debug(ctx: AppendEventContext, next: Any) -> ss.Event:
        if ctx.event.author == "debug":
            return ss.Event(author="debug", content="dropped", id=ctx.event.id)
        return await next()

    svc = await make_service(append_event_hooks=[drop_debug])
    s = await new_session(svc, "s1")
    before = await snapshot(svc, key("s1"))
    returned = await svc.append_event(s, event("debug", content="noise", state_delta={"k": 1}))
    assert returned.content == "dropped" and returned.seq is None
    assert await snapshot(svc, key("s1")) == before
    assert s.events == [] and s.state == {}
    assert (await svc.append_event(s, event(content="kept"))).seq == 1


async def test_a_hook_error_propagates_unchanged_and_stores_nothing(make_service):
    boom = RuntimeError("refused by policy")

    async def refuse(ctx: AppendEventContext, next: Any) -> ss.Event:
        raise boom

    svc = await make_service(append_event_hooks=[recorder("outer", []), refuse])
    s = await new_session(svc, "s1")
    before = await snapshot(svc, key("s1"))
    with pytest.raises(RuntimeError) as caught:
        await svc.append_event(s, event(content="x", state_delta={"k": 1}))
    assert caught.value is boom
    assert await snapshot(svc, key("s1")) == before
    assert s.events == [] and s.version == 0


async def test_an_event_a_hook_spoilt_is_refused_and_stores_nothing(make_service):
    async def spoil(ctx: AppendEventContext, next: Any) -> ss.Event:
        ctx.event.content = {1, 2}  # not JSON
        return await next()

    svc = await make_service(append_event_hooks=[spoil])
    s = await new_session(svc, "s1")
    before = await snapshot(svc, key("s1"))
    with pytest.raises(ss.InvalidEventError):
        await svc.append_event(s, event(content="x"))
    assert await snapshot(svc, key("s1")) == before


async def test_a_read_hook_may_post_process_change_the_read_or_short_circuit(make_service):
    async def redact(ctx: GetSessionContext, next: Any) -> ss.Session | None:
        session = await next()
        if session is not None:
            session.state.pop("secret", None)
        return session

    async def newest_only(ctx: GetSessionContext, next: Any) -> ss.Session | None:
        ctx.event_num = 1
        return await next()

    async def hide_blocked(ctx: GetSessionContext, next: Any) -> ss.Session | None:
        return None if ctx.key.session_id == "blocked" else await next()

    svc = await make_service(get_session_hooks=[redact, newest_only, hide_blocked])
    s = await new_session(svc, "s1", state={"secret": "x", "ok": 1})
    await new_session(svc, "blocked")
    for content in ("a", "b"):
        await svc.append_event(s, event(content=content))
    got = await must_get(svc, key("s1"))
    assert got.state == {"ok": 1} and [e.content for e in got.events] == ["b"]
    assert await svc.get_session(key("blocked")) is None


async def test_a_read_hook_error_propagates(make_service):
    async def fail(ctx: GetSessionContext, next: Any) -> ss.Session | None:
        raise LookupError("no")

    svc = await make_service(get_session_hooks=[fail])
    await new_session(svc, "s1")
    with pytest.raises(LookupError, match="no"):
        await svc.get_session(key("s1"))


def test_hooks_must_be_a_sequence_of_callables():
    async def hook(ctx: Any, next: Any) -> Any:
        return await next()

    assert ss.ServiceOptions(append_event_hooks=[hook]).append_event_hooks == (hook,)
    for bad in (hook, [1], "hook"):
        with pytest.raises(ss.ConfigurationError):
            ss.ServiceOptions(append_event_hooks=bad)
        with pytest.raises(ss.ConfigurationError):
            ss.ServiceOptions(get_session_hooks=bad)
