"""Opaque keyset cursors for list_sessions: (updated_at, session_id) of the last row shown."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from .errors import InvalidCursorError


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
            updated_at = datetime.fromisoformat(stamp)
        except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
            raise InvalidCursorError("cursor is not one that list_sessions produced") from None
        if updated_at.tzinfo is None or not isinstance(session_id, str):
            raise InvalidCursorError("cursor is not one that list_sessions produced")
        return cls(updated_at.astimezone(timezone.utc), session_id)

    def sort_key(self) -> tuple[datetime, str]:
        return (self.updated_at, self.session_id)
