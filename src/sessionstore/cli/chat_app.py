"""The chat itself: the current user and session, the slash commands, and how a turn is shown.

`ChatApp` holds what the chat knows between lines (the service, the
runner, the user, the current session) and answers one line at a time
(`handle`): a slash command, or a message for the model. It prints through
a rich `Console`, which styles the output on a terminal and prints plain
text when the output is piped. It never lets an exception out: every
failure is one ``error: ...`` line and the chat goes on. The loop that
reads lines (interactive or piped) is in ``cli.chat``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.text import Text

from ..agent import OfflineModel, Runner
from ..agent.offline import LABEL as OFFLINE_LABEL
from ..errors import SessionStoreError
from ..keys import Key, UserKey
from ..records import Session
from ..service import SessionService
from .output import error_text, scrub

RECAP_REQUEST = "Please recap our conversation so far."
TITLE_LENGTH = 60

HELP = """\
commands:
  /new            start a new session
  /sessions       list your sessions (* marks the current one)
  /use <id>       switch to a session (created if it does not exist)
  /history        ask the model to recap this session
  /title <text>   set the current session's title
  /delete <id>    delete one of your sessions
  /summary        write (and show) a summary of the current session now
  /help           this list
  /exit           leave (Ctrl-D too)
anything else is a message to the model"""

__all__ = ["HELP", "ChatApp", "new_session_id"]


def new_session_id() -> str:
    return "chat-" + uuid.uuid4().hex[:8]


class ChatApp:
    """One chat: a user, a current session, and the commands that act on them."""

    def __init__(self, service: SessionService, runner: Runner, user_id: str, session_id: str, *,
                 console: Console, url: str, stream: bool) -> None:
        self.service = service
        self.runner = runner
        self.user = UserKey(runner.app_name, user_id)
        self.session_id = session_id
        self.console = console
        self.url = url
        self.stream = stream
        self.errors = 0
        self._titled: set[str] = set()

    @property
    def key(self) -> Key:
        return Key(self.user.app_name, self.user.user_id, self.session_id)

    @property
    def model_label(self) -> str:
        return OFFLINE_LABEL if isinstance(self.runner.model, OfflineModel) else f"{self.runner.model.name} (OpenAI-compatible)"

    # ------------------------------------------------------------------ output

    def say(self, text: str, style: str | None = None) -> None:
        self.console.print(Text(text, style=style or ""), soft_wrap=True)

    def error(self, text: str) -> None:
        self.errors += 1
        self.console.print(Text("error: " + scrub(text, self.url), style="bold red"), soft_wrap=True)

    async def guarded(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Run a command or a turn; a failure is one error line, never a traceback."""
        try:
            await action()
        except SessionStoreError as exc:
            self.error(error_text(exc))
        except Exception as exc:  # noqa: BLE001 - the chat reports every failure in one line and goes on
            self.error(error_text(exc))

    # ------------------------------------------------------------------ lines

    async def handle(self, line: str) -> bool:
        """Act on one input line; False when the chat should end."""
        line = line.strip()
        if not line:
            return True
        if not line.startswith("/"):
            await self.guarded(lambda: self.turn(line))
            return True
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name in ("/exit", "/quit"):
            return False
        commands: dict[str, Callable[[str], Awaitable[None]]] = {
            "/new": self.cmd_new, "/sessions": self.cmd_sessions, "/use": self.cmd_use,
            "/history": self.cmd_history, "/title": self.cmd_title, "/delete": self.cmd_delete,
            "/summary": self.cmd_summary, "/help": self.cmd_help,
        }
        command = commands.get(name)
        if command is None:
            self.error(f"unknown command {name[:40]} (type /help for the list)")
            return True
        await self.guarded(lambda: command(arg))
        return True

    async def turn(self, message: str) -> None:
        label = self.runner.model.name
        self.console.print(Text(f"{label}> ", style="bold cyan"), end="")
        reply = self.runner.stream(self.user.user_id, self.session_id, message, streaming=self.stream)
        try:
            async for chunk in reply:
                self.console.print(Text(chunk), end="", soft_wrap=True)
        finally:
            self.console.print()
            await reply.aclose()  # an interrupted turn releases the session at once
        if reply.session_id is not None and reply.session_id != self.session_id:
            self.say(f"(session {self.session_id} had been idle too long; this turn started session "
                     f"{reply.session_id}, linked to it in its metadata)", "yellow")
            self.session_id = reply.session_id
        await self._auto_title(message)

    async def _auto_title(self, message: str) -> None:
        """Name an untitled session after its first message, once, so /sessions can show something."""
        if self.session_id in self._titled:
            return
        self._titled.add(self.session_id)
        session = await self.service.get_session(self.key, event_num=0)
        if session is not None and not session.title:
            title = " ".join(message.split())
            title = title if len(title) <= TITLE_LENGTH else title[: TITLE_LENGTH - 1] + "…"
            await self.service.set_session_metadata(self.key, title=title)

    # ------------------------------------------------------------------ commands

    async def cmd_help(self, arg: str) -> None:
        self.say(HELP)

    async def cmd_new(self, arg: str) -> None:
        previous, self.session_id = self.session_id, new_session_id()
        self.say(f"new session {self.session_id} (previous: {previous}); the conversation starts afresh", "green")

    async def cmd_use(self, arg: str) -> None:
        if not arg:
            raise _UsageError("usage: /use <session id>")
        key = Key(self.user.app_name, self.user.user_id, arg)  # refuses ids the store cannot hold
        session = await self.service.get_session(key, event_num=0)
        self.session_id = arg
        if session is None:
            self.say(f"switched to new session {arg} (nothing stored yet)", "green")
        else:
            self.say(f"switched to session {arg}{_titled(session)}, last updated {_when(session.updated_at)}", "green")

    async def cmd_sessions(self, arg: str) -> None:
        page = await self.service.list_sessions(self.user, limit=50)
        sessions = page.sessions
        if not any(s.id == self.session_id for s in sessions):
            self.say(f"* {self.session_id}  (current, nothing stored yet)")
        if not sessions:
            self.say(f"  {self.user.user_id} has no stored sessions yet")
        for s in sessions:
            mark = "*" if s.id == self.session_id else " "
            title = f'"{s.title}"' if s.title else "(untitled)"
            self.say(f"{mark} {s.id}  {title}  updated {_when(s.updated_at)}")
        if page.next_cursor is not None:
            self.say("  … (older sessions not shown)")

    async def cmd_history(self, arg: str) -> None:
        session = await self.service.get_session(self.key, event_num=1)
        if session is None or not session.events:
            self.say("nothing to recap yet: this session has no stored messages")
            return
        await self.turn(RECAP_REQUEST)

    async def cmd_title(self, arg: str) -> None:
        if not arg:
            raise _UsageError("usage: /title <text>")
        if await self.service.get_session(self.key, event_num=0) is None:
            await self.service.create_session(self.key)
        await self.service.set_session_metadata(self.key, title=arg)
        self._titled.add(self.session_id)
        self.say(f'session {self.session_id} is now titled "{arg}"', "green")

    async def cmd_delete(self, arg: str) -> None:
        if not arg:
            raise _UsageError("usage: /delete <session id>")
        key = Key(self.user.app_name, self.user.user_id, arg)
        if await self.service.get_session(key, event_num=0) is None:
            raise _UsageError(f"no session {arg!r} for user {self.user.user_id!r} (see /sessions)")
        await self.service.delete_session(key)
        self.say(f"deleted session {arg}", "green")
        if arg == self.session_id:
            self.session_id = new_session_id()
            self.say(f"that was the current session; now in new session {self.session_id}", "green")

    async def cmd_summary(self, arg: str) -> None:
        text = await self.runner.summarize(self.user.user_id, self.session_id)
        if text is None:
            self.say("nothing to summarize yet: this session has no stored messages")
        else:
            self.say(f"summary of {self.session_id} (stored with the session):\n{text}")


class _UsageError(SessionStoreError):
    """A command used wrongly; its message is the whole error line."""


def _titled(session: Session) -> str:
    return f' "{session.title}"' if session.title else ""


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")
