"""LangChain adapter: ``SessionStoreChatMessageHistory``, a ``BaseChatMessageHistory`` on sessionstore.

Needs the ``langchain`` extra (``pip install 'sessionstore[langchain]'``);
without it, importing this package raises an ImportError that says so.
See docs/adapters.md.
"""

from __future__ import annotations

from ..adapters import require_framework

require_framework("langchain", "sessionstore.langchain")

from .history import SessionStoreChatMessageHistory  # noqa: E402 - after the check that names the extra

__all__ = ["SessionStoreChatMessageHistory"]
