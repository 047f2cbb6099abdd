"""``sessionstore chat``: talk to a model in a terminal, with every turn kept in a session store.

    sessionstore chat [--url URL] [--user ID] [--session ID] [--event-limit N]
                      [--session-ttl 24h] [--model NAME] [--no-stream]

With ``OPENAI_API_KEY`` set it talks to an OpenAI-compatible model
(``OPENAI_BASE_URL`` for another endpoint, ``--model`` to pick one; needs the
``openai`` extra); without, to the offline model, which says what it is and
answers only from the session's stored history and state. The default
database is a SQLite file under ``.sessionstore/`` in the working
directory, installed on first use. Interactive on a terminal (line editing
and history through readline, styled output); with stdin piped, it reads a
script of messages and commands, echoing each, and stops at its end. The
slash commands are in ``cli.chat_app``. Errors are one line: a bad option
ends the chat with exit 2, an unreachable database or a missing schema with
exit 1 (cli/output.py), anything later is reported and the chat goes on.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import sys
from collections.abc import Coroutine, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from ..agent import LLMSummarizer, OfflineModel, OpenAIChatModel, Runner, SessionTools, has_openai_key
from ..agent.models import ChatModel
from ..agent.openai_model import DEFAULT_MODEL
from ..errors import SessionStoreError
from ..factory import open_service
from ..keys import UserKey
from ..redaction import redact
from ..service import SessionService
from .chat_app import ChatApp, new_session_id
from .options import parse_duration
from .output import fail_with, usage_error

DEFAULT_URL = "sqlite:///.sessionstore/chat.db"
APP_NAME = "sessionstore-chat"
PROMPT = "you> "
SYSTEM_PROMPT = ("You are a helpful assistant in a terminal chat. The user's sessions are stored; "
                 "you can list, read, title and tidy them with the sessions_* tools when asked.")

T = TypeVar("T")

__all__ = ["APP_NAME", "DEFAULT_URL", "chat", "register", "run_chat"]


def register(app: typer.Typer) -> None:
    app.command(name="chat")(chat)


def chat(
    url: Annotated[str, typer.Option("--url", help="Database URL (a new SQLite file is installed on first use; "
                                                   "other databases need `sessionstore db upgrade` first).")] = DEFAULT_URL,
    user: Annotated[str | None, typer.Option("--user", help="User id (default: your login name).")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Session id to open (default: your most recent "
                                                                  "session, or a new one).")] = None,
    event_limit: Annotated[int, typer.Option("--event-limit", min=1, help="Most events kept per session.")] = 1000,
    session_ttl: Annotated[str | None, typer.Option("--session-ttl", help="Sessions idle this long expire "
                                                                          "(e.g. 24h, 7d; default: never).")] = None,
    model: Annotated[str | None, typer.Option("--model", help=f"Model name for the OpenAI-compatible endpoint "
                                                              f"(default {DEFAULT_MODEL}; needs OPENAI_API_KEY).")] = None,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Print each reply whole instead of as it arrives.")] = False,
) -> None:
    """Chat with a model; every turn is stored. Type /help inside for the session commands."""
    ttl = parse_duration("--session-ttl", session_ttl) if session_ttl else None
    errors = run_chat(url, user, session, event_limit=event_limit, session_ttl=ttl, model=model, stream=not no_stream)
    if errors and not sys.stdin.isatty():
        raise typer.Exit(1)  # a script that hit errors says so


def run_chat(url: str, user: str | None, session: str | None, *, event_limit: int = 1000,
             session_ttl: timedelta | None = None, model: str | None = None, stream: bool = True,
             script: Sequence[str] | None = None) -> int:
    """The chat: interactive on a terminal, else the lines of `script` (or of stdin); the count of errors."""
    user_id = user if user is not None else _login_name()
    try:
        UserKey(APP_NAME, user_id)
        chat_model = _choose_model(model)
    except SessionStoreError as exc:  # a bad --user or --model: the command line is wrong
        usage_error(str(exc))
    interactive = script is None and sys.stdin.isatty()
    lines = iter(script) if script is not None else None
    console = Console(highlight=False)
    loop = asyncio.new_event_loop()
    try:
        service = _run(loop, _open(url, event_limit, session_ttl), url)
        try:
            app = _run(loop, _start(service, chat_model, user_id, session, console, url, stream), url)
            if model and isinstance(chat_model, OfflineModel):
                app.say(f"  (--model {model} is not used: no OPENAI_API_KEY is set)", "yellow")
            _loop(loop, app, interactive, lines)
        finally:
            loop.run_until_complete(service.close())
            if isinstance(chat_model, OpenAIChatModel):
                loop.run_until_complete(chat_model.close())
    finally:
        loop.close()
    return app.errors


def _login_name() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container without a passwd entry): use a fixed one
        name = ""
    return re.sub(r"\s+", "-", name) or "user"


def _choose_model(name: str | None) -> ChatModel:
    if has_openai_key():
        return OpenAIChatModel(name or DEFAULT_MODEL)
    return OfflineModel()


def _run(loop: asyncio.AbstractEventLoop, action: Coroutine[Any, Any, T], url: str) -> T:
    """Run a start-up step; a failure ends the chat with one error line naming the (redacted) URL."""
    try:
        return loop.run_until_complete(action)
    except Exception as exc:  # noqa: BLE001 - never a traceback; a bad URL or option exits 2, the rest 1
        fail_with(exc, url)


def _new_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL that does not exist yet (or the default one): the chat installs the schema
    there; anything else must be migrated by its owner (`sessionstore db upgrade`)."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
        return None
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    return path if url == DEFAULT_URL or not path.exists() else None


async def _open(url: str, event_limit: int, ttl: timedelta | None) -> SessionService:
    install = _new_sqlite_file(url)
    if install is not None:
        install.parent.mkdir(parents=True, exist_ok=True)
    extra = {"auto_migrate": True} if install is not None else {}
    service = open_service(url, event_limit=event_limit, session_ttl=ttl, **extra)
    try:
        await service.start()
    except BaseException:
        await service.close()
        raise
    return service


async def _start(service: SessionService, model: ChatModel, user_id: str, session_id: str | None,
                 console: Console, url: str, stream: bool) -> ChatApp:
    runner = Runner(service, model, APP_NAME, history_events=50, summarizer=LLMSummarizer(model, every_events=40),
                    tools=SessionTools(service, APP_NAME), system_prompt=None if isinstance(model, OfflineModel) else SYSTEM_PROMPT)
    resumed = None
    if session_id is None:
        page = await service.list_sessions(UserKey(APP_NAME, user_id), limit=1)
        resumed = page.sessions[0] if page.sessions else None
        session_id = resumed.id if resumed else new_session_id()
    app = ChatApp(service, runner, user_id, session_id, console=console, url=url, stream=stream)
    app.say(f"sessionstore chat on {redact(url)}", "bold")
    app.say(f"model: {app.model_label}")
    if isinstance(model, OfflineModel):
        app.say("  (set OPENAI_API_KEY, and OPENAI_BASE_URL for a compatible server, to talk to a real model)", "dim")
    where = (f"resumed your most recent session {session_id}" + (f' "{resumed.title}"' if resumed.title else "")
             if resumed else f"session {session_id}")
    app.say(f"user: {user_id}; {where}; /help lists the commands", "dim")
    if session_id and not resumed:
        existing = await service.get_session(app.key, event_num=0)
        app.say("  (a new session: nothing stored yet)" if existing is None else "  (found in the store)", "dim")
    return app


def _loop(loop: asyncio.AbstractEventLoop, app: ChatApp, interactive: bool, script: Iterator[str] | None) -> None:
    if interactive:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:  # not on every platform; input() still works
            pass
    while True:
        try:
            line = input(PROMPT) if interactive else _read_scripted(app, script)
        except EOFError:
            if interactive:
                app.console.print()
            break
        except KeyboardInterrupt:
            app.console.print()
            if interactive:
                continue
            break
        task = loop.create_task(app.handle(line))
        try:
            if not loop.run_until_complete(task):
                break
        except KeyboardInterrupt:  # Ctrl-C during a turn: stop it (what was stored stays) and go on
            task.cancel()
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            app.say("(interrupted)", "yellow")
            if not interactive:
                break
    app.say("bye", "dim")


def _read_scripted(app: ChatApp, script: Iterator[str] | None) -> str:
    """The next line of a script (piped stdin, or given), echoed after the prompt so the transcript reads like a chat."""
    if script is None:
        line = sys.stdin.readline()
        if line == "":
            raise EOFError
    else:
        given = next(script, None)
        if given is None:
            raise EOFError
        line = given
    line = line.rstrip("\n")
    if line.strip():
        app.console.print(PROMPT + line, markup=False, highlight=False, soft_wrap=True)
    return line



