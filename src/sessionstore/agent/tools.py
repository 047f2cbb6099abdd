"""Session tools for LLMs: OpenAI function schemas and an executor bound to the calling user.

    tools = SessionTools(svc, "my-agent").for_user("u1", current_session_id)
    tools.definitions            # pass as `tools=` to a chat-completions call
    result = await tools.execute(call)   # a JSON value, {"error": ...} on bad arguments

The executor builds every key from the app and user it was bound to; no
argument names an app or a user, and unknown arguments are refused, so a
tool call can only reach the calling user's own sessions, whatever the
model invents. Arguments are checked (types, ranges, identifiers) and a
bad call gets ``{"error": "..."}`` back, never an exception: the model
reads the error and can try again. The session in use cannot be deleted
from inside its own turn.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

import orjson

from ..errors import SessionStoreError
from ..keys import Key, UserKey
from ..records import Session
from ..service import SessionService
from ..state import DELETE
from .history import event_text
from .models import ToolCall

MAX_LIMIT = 50
_SESSION_ID = {"type": "string", "description": "A session id of this user (default: the current session)."}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": f"At most this many (1-{MAX_LIMIT})."}


def _function(name: str, description: str, properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required or [],
                       "additionalProperties": False},
    }}


DEFINITIONS: list[dict[str, Any]] = [
    _function("sessions_list", "List this user's sessions, most recently updated first.", {"limit": _LIMIT}),
    _function("sessions_history", "The newest messages of one of this user's sessions.",
              {"session_id": _SESSION_ID, "limit": _LIMIT}),
    _function("sessions_get", "Details of one of this user's sessions: title, metadata, times, event count.",
              {"session_id": _SESSION_ID}),
    _function("sessions_clear", "Remove every message of one of this user's sessions, keeping the session.",
              {"session_id": _SESSION_ID}),
    _function("sessions_delete", "Delete one of this user's sessions (not the current one).",
              {"session_id": {"type": "string", "description": "The session id to delete."}}, ["session_id"]),
    _function("sessions_metadata_set", "Set the title and/or merge keys into the metadata of one of this user's sessions.",
              {"session_id": _SESSION_ID, "title": {"type": "string", "description": "New title."},
               "metadata": {"type": "object", "description": "Top-level keys to set; a null value removes that key."}}),
    _function("sessions_metadata_get", "The title and metadata of one of this user's sessions.", {"session_id": _SESSION_ID}),
]
"""The tools in the OpenAI ``tools`` format (JSON-schema function definitions)."""

__all__ = ["DEFINITIONS", "BoundSessionTools", "SessionTools"]


class ToolArgumentError(Exception):
    """A tool call's arguments are unusable; the message goes back to the model."""


class SessionTools:
    """The session tools of one app; `for_user` binds them to the calling user."""

    definitions = DEFINITIONS

    def __init__(self, service: SessionService, app_name: str) -> None:
        UserKey(app_name, "check")
        self.service = service
        self.app_name = app_name

    def for_user(self, user_id: str, current_session_id: str | None = None) -> BoundSessionTools:
        return BoundSessionTools(self.service, UserKey(self.app_name, user_id), current_session_id)


class BoundSessionTools:
    """The tools for one user (and their current session): every key is built from `user`."""

    definitions = DEFINITIONS

    def __init__(self, service: SessionService, user: UserKey, current_session_id: str | None) -> None:
        self.service = service
        self.user = user
        self.current = current_session_id
        self._handlers: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, Any]]] = {
            "sessions_list": self._list, "sessions_history": self._history, "sessions_get": self._get,
            "sessions_clear": self._clear, "sessions_delete": self._delete,
            "sessions_metadata_set": self._metadata_set, "sessions_metadata_get": self._metadata_get,
        }
        self._allowed = {d["function"]["name"]: set(d["function"]["parameters"]["properties"]) for d in DEFINITIONS}

    async def execute(self, call: ToolCall) -> Any:
        """Run one tool call; a JSON value, ``{"error": ...}`` when the call cannot be done."""
        handler = self._handlers.get(call.name)
        if handler is None:
            return {"error": f"unknown tool {call.name[:64]!r}"}
        try:
            args = _arguments(call.arguments, self._allowed[call.name])
            return await handler(args)
        except ToolArgumentError as exc:
            return {"error": str(exc)}
        except SessionStoreError as exc:  # a key or value the store refuses: tell the model why
            return {"error": str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}

    # ------------------------------------------------------------------ the tools

    async def _list(self, args: dict[str, Any]) -> Any:
        page = await self.service.list_sessions(self.user, limit=_limit(args))
        return {"sessions": [_brief(s, self.current) for s in page.sessions], "more": page.next_cursor is not None}

    async def _history(self, args: dict[str, Any]) -> Any:
        session = await self._session(args, event_num=_limit(args))
        return {"session_id": session.id, "messages": [
            {"seq": e.seq, "author": e.author, "text": event_text(e)[:2000], "time": _iso(e.timestamp)}
            for e in session.events]}

    async def _get(self, args: dict[str, Any]) -> Any:
        session = await self._session(args, event_num=0)
        return _brief(session, self.current) | {"created_at": _iso(session.created_at), "version": session.version,
                                                "metadata": session.metadata}

    async def _clear(self, args: dict[str, Any]) -> Any:
        session = await self._session(args, event_num=0)
        removed = await self.service.clear_session_events(session.key)
        return {"cleared": session.id, "events_removed": removed}

    async def _delete(self, args: dict[str, Any]) -> Any:
        key = self._key(args)
        if key.session_id == self.current:
            raise ToolArgumentError("the current session cannot be deleted from inside its own conversation")
        if await self.service.get_session(key, event_num=0) is None:
            raise ToolArgumentError(f"no session {key.session_id!r}")
        await self.service.delete_session(key)
        return {"deleted": key.session_id}

    async def _metadata_set(self, args: dict[str, Any]) -> Any:
        key = self._key(args)
        title, metadata = args.get("title"), args.get("metadata")
        if title is not None and not isinstance(title, str):
            raise ToolArgumentError("title must be a string")
        if metadata is not None and not isinstance(metadata, dict):
            raise ToolArgumentError("metadata must be an object")
        if title is None and metadata is None:
            raise ToolArgumentError("give a title, metadata, or both")
        options: dict[str, Any] = {}
        if title is not None:
            options["title"] = title
        if metadata is not None:
            options["metadata"] = {k: DELETE if v is None else v for k, v in metadata.items()}
        await self.service.set_session_metadata(key, **options)
        session = await self._session(args, event_num=0)
        return {"session_id": session.id, "title": session.title, "metadata": session.metadata}

    async def _metadata_get(self, args: dict[str, Any]) -> Any:
        session = await self._session(args, event_num=0)
        return {"session_id": session.id, "title": session.title, "metadata": session.metadata}

    # ------------------------------------------------------------------ helpers

    def _key(self, args: Mapping[str, Any]) -> Key:
        session_id = args.get("session_id", self.current)
        if session_id is None:
            raise ToolArgumentError("session_id is required (there is no current session)")
        if not isinstance(session_id, str):
            raise ToolArgumentError("session_id must be a string")
        return Key(self.user.app_name, self.user.user_id, session_id)  # validated: InvalidKeyError on junk

    async def _session(self, args: Mapping[str, Any], *, event_num: int) -> Session:
        key = self._key(args)
        session = await self.service.get_session(key, event_num=event_num)
        if session is None:
            raise ToolArgumentError(f"no session {key.session_id[:128]!r}")
        return session


def _arguments(text: object, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(text, str) or len(text) > 100_000:
        raise ToolArgumentError("arguments must be a JSON object of at most 100,000 characters")
    try:
        args = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        raise ToolArgumentError("arguments are not valid JSON") from None
    if not isinstance(args, dict):
        raise ToolArgumentError("arguments must be a JSON object")
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ToolArgumentError(f"unknown argument(s) {', '.join(repr(u[:64]) for u in unknown[:5])}; "
                                f"allowed: {', '.join(sorted(allowed)) or 'none'}")
    return args


def _limit(args: Mapping[str, Any]) -> int:
    limit = args.get("limit", 10)
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise ToolArgumentError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _brief(session: Session, current: str | None) -> dict[str, Any]:
    return {"session_id": session.id, "title": session.title, "updated_at": _iso(session.updated_at),
            "current": session.id == current}
