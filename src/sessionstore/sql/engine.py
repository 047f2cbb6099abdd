"""From a URL to an AsyncEngine: driver choice, per-dialect engine setup, redaction."""

from __future__ import annotations

import asyncio
import re
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import ConfigurationError, DatabaseError
from ..redaction import redact
from .dialects import RULES, URL_SCHEMES, DialectRules, rules_for

_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,19}$")


def normalize_url(url: str | URL) -> URL:
    """Map sqlite/postgresql/postgres/mysql/mariadb URLs to their async driver.

    An explicit async ``+driver`` is kept; a sync driver gets an error naming
    the async one to use.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise ConfigurationError(f"not a database URL: {redact(url)}") from None
    backend, _, driver = parsed.drivername.partition("+")
    dialect = URL_SCHEMES.get(backend)
    if dialect is None:
        raise ConfigurationError(
            f"unsupported database {backend!r} in {redact(parsed)}: "
            "use memory://, sqlite:///path, postgresql://, mysql:// or mariadb://"
        )
    rules = rules_for(dialect)
    if driver and driver not in rules.async_drivers:
        raise ConfigurationError(f"driver {driver!r} in {redact(parsed)} {_driver_problem(rules, driver, backend)}")
    return parsed.set(drivername=f"{dialect}+{driver or rules.async_driver}")


def _driver_problem(rules: DialectRules, driver: str, backend: str) -> str:
    """Why `driver` cannot be used, and the URLs that work."""
    supported = " or ".join(f"{backend}+{name}://" for name in rules.async_drivers)
    use = f"use {supported} (plain {backend}:// means {backend}+{rules.async_driver}://)"
    if driver in rules.unsupported_async_drivers:
        return f"is an async driver that sessionstore does not support: {use}"
    return f"is not a driver sessionstore supports (it needs an async one it knows): {use}"


def check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise ConfigurationError(
            f"table_prefix must be 1-20 letters, digits or underscores starting with a letter, got {prefix!r}"
        )
    return prefix


def make_engine(url: str | URL, **engine_options: Any) -> AsyncEngine:
    """An AsyncEngine for `url` with the dialect's setup (SQLite pragmas, MySQL isolation)."""
    normalized = normalize_url(url)
    rules = rules_for(normalized.get_backend_name())
    problem = rules.url_problem(normalized)
    if problem is not None:
        reason, fix = problem
        raise DatabaseError(f"{reason} on {normalized.render_as_string(hide_password=True)}: {fix}")
    options = rules.engine_options() | engine_options
    normalized, tls = rules.tls_from_url(normalized)
    if tls is not None:
        options["connect_args"] = {**options.get("connect_args", {}), "ssl": tls}
    try:
        engine = create_async_engine(normalized, **options)
    except (ArgumentError, TypeError) as exc:
        raise ConfigurationError(f"cannot create an engine for {redact(normalized)}: {exc}") from None
    except ImportError as exc:
        driver = normalized.get_driver_name()
        raise ConfigurationError(
            f"the {driver} driver is not installed: pip install 'sessionstore[{rules.extra_for(driver)}]' ({exc})"
        ) from None
    if tls is not None:
        rules.refuse_plaintext(engine)
    prepare_engine(engine)
    return engine


def rules_of(engine: AsyncEngine) -> DialectRules:
    """The dialect rules of an engine, which must use the dialect's async driver."""
    name = engine.dialect.name
    if name not in RULES:
        raise ConfigurationError(f"unsupported database {name!r}: use SQLite, PostgreSQL or MySQL/MariaDB")
    rules = rules_for(name)
    if engine.dialect.driver not in rules.async_drivers:
        drivers = " or ".join(rules.async_drivers)
        raise ConfigurationError(
            f"the engine uses the {engine.dialect.driver!r} driver; sessionstore needs {drivers} "
            f"for {name} (create_async_engine('{name}+{rules.async_driver}://…'))"
        )
    return rules


@dataclass
class _EngineState:
    """What we keep per engine, for as long as the engine lives (it may be a caller's)."""

    hooks_installed: bool = False
    write_gate: asyncio.Lock | None = None


_ENGINES: weakref.WeakKeyDictionary[Engine, _EngineState] = weakref.WeakKeyDictionary()


def _state(engine: AsyncEngine) -> _EngineState:
    return _ENGINES.setdefault(engine.sync_engine, _EngineState())


def prepare_engine(engine: AsyncEngine) -> None:
    """Install our connection hooks on a caller's engine (idempotent)."""
    state = _state(engine)
    if not state.hooks_installed:
        rules_of(engine).install_hooks(engine)
        state.hooks_installed = True


def write_gate(engine: AsyncEngine) -> asyncio.Lock | None:
    """The lock the writers of this process take on a single-writer database (one per engine).

    SQLite runs one write transaction at a time; a writer that finds the
    database locked sleeps in the busy handler (a millisecond and more), so
    queueing in-process instead keeps append latency flat while, say, a
    cleanup runs. Other processes still queue on SQLite's own lock.
    """
    if not rules_of(engine).single_writer:
        return None
    state = _state(engine)
    if state.write_gate is None:
        state.write_gate = asyncio.Lock()
    return state.write_gate
