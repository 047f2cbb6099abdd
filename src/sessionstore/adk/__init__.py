"""Google ADK adapter: ``SessionStoreSessionService``, a drop-in ``BaseSessionService``.

Needs the ``adk`` extra (``pip install 'sessionstore[adk]'``); without it,
importing this package raises an ImportError that says so. See docs/adapters.md.
"""

from __future__ import annotations

from ..adapters import require_framework

require_framework("adk", "sessionstore.adk")

from .service import SessionStoreSessionService  # noqa: E402 - after the check that names the extra

__all__ = ["SessionStoreSessionService"]
