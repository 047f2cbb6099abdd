"""Opaque keyset cursors for list_sessions and list_app_sessions: the sort key of the last row shown.

list_sessions orders one user's sessions by (updated_at, session_id);
list_app_sessions orders an app's sessions of every user by (updated_at,
session_id, user_id), since two users may hold the same session id. Its
cursors carry the user id too, and neither method accepts the other's.

A cursor comes back from the caller, so decoding checks it like any input:
a time the service could have stored and a session id that follows the id
rules, so a forged cursor raises InvalidCursorError on every backend instead
of whatever the database makes of it (PostgreSQL refuses U+0000 outright).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

import orjson

from .errors import InvalidCursorError
from .keys import check_identifier
from .timestamps import utc_if_storable


@dataclass(frozen=True, slots=True)
class Cursor:
    updated_at: datetime
    session_id: str
    user_id: str | None = None
    """Set in list_app_sessions' cursors only."""

    def encode(self) -> str:
        parts = [self.updated_at.isoformat(), self.session_id]
        if self.user_id is not None:
            parts.append(self.user_id)
        raw = orjson.dumps(parts)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: object, *, across_users: bool = False) -> Cursor:
        """The cursor `text` encodes; `across_users`: one of list_app_sessions' (with a user id)."""
        method = "list_app_sessions" if across_users else "list_sessions"
        if not isinstance(text, str) or not text:
            raise InvalidCursorError("cursor must be a non-empty str from a previous SessionPage")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            parts = orjson.loads(raw)
            if not isinstance(parts, list) or len(parts) != (3 if across_users else 2):
                raise ValueError("wrong shape")
            stamp, session_id, *user = parts
            updated_at = utc_if_storable(datetime.fromisoformat(stamp))
            check_identifier(session_id, "cursor session id", error=ValueError)
            for user_id in user:
                check_identifier(user_id, "cursor user id", error=ValueError)
        except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
            raise InvalidCursorError(f"cursor is not one that {method} produced") from None
        if updated_at is None:  # naive, or a time no backend stores
            raise InvalidCursorError(f"cursor is not one that {method} produced")
        return cls(updated_at, session_id, user[0] if user else None)

    def sort_key(self) -> tuple[datetime, str]:
        return (self.updated_at, self.session_id)

    def app_sort_key(self) -> tuple[datetime, str, str]:
        return (self.updated_at, self.session_id, self.user_id or "")
