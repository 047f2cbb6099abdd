"""How each backend is provisioned for a test run.

memory: a fresh InMemorySessionService per service (a test that needs two
services on one store uses the SQL backends). SQL backends are added in
tests/sql_backends.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sessionstore import InMemorySessionService, ServiceOptions, SessionService


class Backend:
    """A provisioned backend: opens services on its storage and empties it between tests."""

    name: str = "memory"
    shared_storage: bool = False  # do two services opened here see the same data?

    def open(self, **options: Any) -> SessionService:
        return InMemorySessionService(ServiceOptions(**options))

    async def reset(self) -> None:
        """Empty the storage before a test."""


BACKENDS = ["memory"]


@asynccontextmanager
async def provision(name: str) -> AsyncIterator[Backend]:
    if name == "memory":
        yield Backend()
        return
    raise ValueError(f"unknown backend {name}")
