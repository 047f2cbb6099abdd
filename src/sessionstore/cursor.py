"""Opaque keyset cursors for list_sessions: (updated_at, session_id) of the last row shown.

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

    def encode(self) -> str:
        raw = orjson.dumps([self.updated_at.isoformat(), self.session_id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: object) -> Cursor:
        if not isinstance(text, str) or not text:
            raise InvalidCursorError("cursor must be a non-empty str from a previous SessionPage")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            stamp, session_id = orjson.loads(raw)
            updated_at = utc_if_storable(datetime.fromisoformat(stamp))
            check_identifier(session_id, "cursor session id", error=ValueError)
        except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
            raise InvalidCursorError("cursor is not one that list_sessions produced") from None
        if updated_at is None:  # naive, or a time no backend stores
            raise InvalidCursorError("cursor is not one that list_sessions produced")
        return cls(updated_at, session_id)

    def sort_key(self) -> tuple[datetime, str]:
        return (self.updated_at, self.session_id)
