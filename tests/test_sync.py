"""The blocking facade (sessionstore.sync) on every backend: many threads at once, a real WSGI
server taking concurrent requests, typed errors, a clean close (explicit and at exit).

The tests are plain (synchronous) functions: the facade is for code with no event loop.
They use the backend's provisioned database (its URL) with an app name of their own.
"""

from __future__ import annotations

import inspect
import json
import secrets
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import sessionstore as ss
from sessionstore import Event, Key, SessionService, UserKey, open_sync_service
from sessionstore.sync import SyncSessionService, public_coroutine_methods

ROOT = Path(__file__).resolve().parent.parent


def _url(backend) -> str:
    return getattr(backend, "url", "memory://")


def _app() -> str:
    return f"sync-{secrets.token_hex(4)}"


def test_every_public_coroutine_method_has_a_blocking_twin():
    names = public_coroutine_methods(SessionService)
    assert {"create_session", "get_session", "append_event", "list_sessions", "cleanup"} <= set(names)
    for name in names:
        twin = getattr(SyncSessionService, name)
        assert not inspect.iscoroutinefunction(twin), name
        assert twin.__doc__ and name in twin.__doc__
        # the same parameters as the async method (self included)
        assert inspect.signature(twin) == inspect.signature(getattr(SessionService, name)), name
    assert "start" not in names and "close" not in names  # the facade runs those itself


def test_threads_share_one_facade_and_lose_nothing(backend):
    app = _app()
    with open_sync_service(_url(backend), cleanup_interval=None) as svc:
        created = svc.create_session(Key(app, "u1"), state={"n": 0})
        key = created.key

        def worker(i: int) -> list[int]:
            seqs = []
            for j in range(8):
                session = svc.get_session(key, event_num=0)
                stored = svc.append_event(session, Event(author="user", content=[i, j], state_delta={f"k{i}": j}))
                seqs.append(stored.seq)
            return seqs

        with ThreadPoolExecutor(8) as pool:
            seqs = [s for batch in pool.map(worker, range(8)) for s in batch]
        assert sorted(seqs) == list(range(1, 65))
        got = svc.get_session(key)
        assert [e.seq for e in got.events] == list(range(1, 65))
        assert got.version == 64 and {f"k{i}": 7 for i in range(8)}.items() <= got.state.items()
        page = svc.list_sessions(UserKey(app, "u1"))
        assert [s.id for s in page.sessions] == [created.id]
        svc.update_app_state(app, {"flag": True})
        assert svc.list_app_state(app) == {"flag": True}


def test_typed_errors_come_through_unchanged(backend):
    with open_sync_service(_url(backend), cleanup_interval=None) as svc:
        with pytest.raises(ss.InvalidKeyError):
            svc.create_session(Key("", "u1"))
        with pytest.raises(ss.SessionNotFoundError):
            svc.update_session_state(Key(_app(), "u1", "nope"), {"a": 1})
        with pytest.raises(ss.InvalidArgumentError):
            svc.list_sessions(UserKey(_app(), "u1"), limit=0)


def test_close_stops_the_loop_thread_and_later_calls_fail():
    svc = open_sync_service("memory://")
    thread = svc._thread
    assert thread.is_alive() and thread.daemon
    svc.close()
    svc.close()  # twice is fine
    assert svc.closed and not thread.is_alive()
    with pytest.raises(ss.SessionStoreError, match="closed"):
        svc.create_session(Key("a", "u"))


def test_unknown_attributes_are_attribute_errors():
    with open_sync_service("memory://") as svc:
        with pytest.raises(AttributeError):
            svc.no_such_method  # noqa: B018
        with pytest.raises(AttributeError):
            svc.start  # noqa: B018 - the facade starts the service itself
        assert svc.options.event_limit == ss.ServiceOptions().event_limit


def test_an_unclosed_facade_is_closed_at_interpreter_exit(tmp_path):
    db = tmp_path / "exit.db"
    script = (
        "import sessionstore as ss\n"
        f"svc = ss.open_sync_service('sqlite:///{db}', auto_migrate=True)\n"
        "s = svc.create_session(ss.Key('a', 'u'))\n"
        "svc.append_event(s, ss.Event(author='user', content='hi'))\n"
        "print('done', svc.get_session(s.key).version)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done 1"
    assert done.stderr == ""  # no "Event loop is closed", no unclosed-connection warnings


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


def test_a_wsgi_app_serves_concurrent_requests(backend):
    """A real WSGI server (one thread per request) whose app calls the facade, hit by 8 clients at once."""
    app_name = _app()
    svc = open_sync_service(_url(backend), cleanup_interval=None)
    key = svc.create_session(Key(app_name, "web")).key

    def wsgi_app(environ, start_response):
        session = svc.get_session(key, event_num=0)
        stored = svc.append_event(session, Event(author="user", content=environ["PATH_INFO"]))
        body = json.dumps({"seq": stored.seq}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    server = make_server("127.0.0.1", 0, wsgi_app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        port = server.server_address[1]

        def request(i: int) -> int:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/turn/{i}", timeout=60) as reply:
                return int(json.loads(reply.read())["seq"])

        with ThreadPoolExecutor(8) as pool:
            seqs = list(pool.map(request, range(40)))
        assert sorted(seqs) == list(range(1, 41))
        got = svc.get_session(key)
        assert sorted(e.content for e in got.events) == sorted(f"/turn/{i}" for i in range(40))
    finally:
        server.shutdown()
        server.server_close()
        svc.close()


class _Extended(ss.InMemorySessionService):
    """A backend with public coroutine methods of its own, one of them an async generator."""

    async def count_sessions(self, user_key: UserKey) -> int:
        return len((await self.list_sessions(user_key)).sessions)

    async def iter_sessions(self, user_key: UserKey):
        for session in (await self.list_sessions(user_key)).sessions:
            yield session.id


def test_a_backends_own_coroutine_methods_and_async_iterators_are_blocking_too():
    with SyncSessionService(_Extended()) as svc:
        for n in range(3):
            svc.create_session(Key("app", "u1", f"s{n}"))
        assert svc.count_sessions(UserKey("app", "u1")) == 3
        assert sorted(svc.iter_sessions(UserKey("app", "u1"))) == ["s0", "s1", "s2"]
    with pytest.raises(TypeError):
        SyncSessionService("memory://")  # type: ignore[arg-type]
