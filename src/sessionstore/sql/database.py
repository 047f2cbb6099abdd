"""One database as the SQL service and its cleanup job share it.

The service and the cleanup job need the same few things: the engine, the
dialect's rules, the table objects, the options, the write gate and the
retry loop. Keeping them here (rather than the cleanup job reaching into
the service) means sql/cleanup.py depends on this module only, and the
service depends on both: no cycle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import ConfigurationError
from ..options import ServiceOptions
from ..retry import retrying
from .dialects import WRITE_OPTION, DialectRules
from .engine import check_prefix, rules_of, write_gate
from .models import Tables, build_tables

T = TypeVar("T")


class Database:
    """An engine with its dialect rules, tables, options and the writers' gate."""

    def __init__(self, engine: AsyncEngine, options: ServiceOptions, *, table_prefix: str, schema: str | None) -> None:
        self.engine = engine
        self.rules: DialectRules = rules_of(engine)
        self.table_prefix = check_prefix(table_prefix)
        if schema is not None and not self.rules.supports_schemas:
            raise ConfigurationError("the schema option is for PostgreSQL only (use table_prefix elsewhere)")
        self.schema = schema
        self.options = options
        self.tables: Tables = build_tables(self.rules, table_prefix, schema)
        self.writer = engine.execution_options(**{WRITE_OPTION: True})
        """The engine for write transactions (SQLite begins them IMMEDIATE)."""
        self._gate = write_gate(engine)

    def gated(self) -> AbstractAsyncContextManager[Any]:
        """Hold this process's write gate (SQLite) for one write transaction; a no-op elsewhere."""
        return self._gate if self._gate is not None else nullcontext()

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run one write transaction under the write gate, rerunning it after a deadlock,
        serialization failure or busy database (the gate is released between attempts)."""

        async def gated_attempt() -> T:
            async with self.gated():
                return await attempt()

        return await retrying(gated_attempt, self.rules.is_retryable)
