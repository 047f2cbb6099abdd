"""OpenAI Agents SDK adapter: ``SessionStoreSession``, the SDK's ``Session`` protocol on sessionstore.

Needs the ``openai-agents`` extra (``pip install 'sessionstore[openai-agents]'``);
without it, importing this package raises an ImportError that says so.
See docs/adapters.md.
"""

from __future__ import annotations

from ..adapters import require_framework

require_framework("openai-agents", "sessionstore.openai_agents")

from .session import SessionStoreSession  # noqa: E402 - after the check that names the extra

__all__ = ["SessionStoreSession"]
