"""TLS for MySQL/MariaDB URLs: ``?ssl_ca=…`` and friends become a real TLS context, and
a server that offers no TLS is refused rather than talked to in the clear.

SQLAlchemy turns a URL's ``ssl_*`` options into a dict, which PyMySQL
understands and aiomysql does not: aiomysql wants an ``ssl.SSLContext``, and
when the server does not offer TLS it quietly goes on without it. So a URL
asking for TLS could give a plaintext connection. Here the options are read
from the URL and made into an SSLContext for aiomysql, and each new
connection is checked (its ``Ssl_cipher`` status) before the pool hands it
out: without TLS it is closed and refused.

Options (the names SQLAlchemy documents for MySQL): ``ssl_ca``,
``ssl_capath``, ``ssl_cert``, ``ssl_key``, ``ssl_cipher``,
``ssl_check_hostname`` (default true), and ``ssl=true`` for TLS verified
against the system's CA certificates.
"""

from __future__ import annotations

import ssl
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import ConfigurationError
from ..redaction import redact

OPTIONS = ("ssl", "ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "ssl_cipher", "ssl_check_hostname")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
NO_TLS_CODE = 2026
"""CR_SSL_CONNECTION_ERROR: what the refusal of a plaintext connection is raised as."""


def tls_from_url(url: URL) -> tuple[URL, ssl.SSLContext | None]:
    """The URL for SQLAlchemy, and the TLS context the URL's options ask for (None: no TLS).

    The options stay in the URL (error messages show it as given): SQLAlchemy
    makes its dict of them, which the context, passed as ``connect_args``,
    replaces. Only ``ssl=false`` is taken out (aiomysql would read the string
    as a context)."""
    given = {name: url.query[name] for name in OPTIONS if name in url.query}
    if not given:
        return url, None

    def one(name: str) -> str | None:
        value = given.get(name)
        if isinstance(value, tuple):
            raise ConfigurationError(f"{name} is given more than once in {redact(url)}")
        return value

    def flag(name: str, default: bool) -> bool:
        value = one(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigurationError(f"{name} must be true or false, got {value!r} in {redact(url)}")

    if not flag("ssl", True):
        if len(given) > 1:
            raise ConfigurationError(f"ssl=false contradicts the other ssl_* options in {redact(url)}")
        return url.difference_update_query(["ssl"]), None
    cert, key = one("ssl_cert"), one("ssl_key")
    if key is not None and cert is None:
        raise ConfigurationError(f"ssl_key needs ssl_cert (the client certificate) in {redact(url)}")
    try:
        context = ssl.create_default_context(cafile=one("ssl_ca"), capath=one("ssl_capath"))
        if cert is not None:
            context.load_cert_chain(cert, key)
        cipher = one("ssl_cipher")
        if cipher is not None:
            context.set_ciphers(cipher)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigurationError(f"the TLS options in {redact(url)} cannot be used: {exc}") from None
    context.check_hostname = flag("ssl_check_hostname", True)
    return url, context


def refuse_plaintext(engine: AsyncEngine) -> None:
    """Check each new connection of `engine` for TLS; one without is closed and refused."""

    @event.listens_for(engine.sync_engine, "connect")
    def require_tls(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            row = cursor.fetchone()
        finally:
            cursor.close()
        if not row or not row[1]:
            import aiomysql  # type: ignore[import-untyped]  # (its errors are PyMySQL's: read by code)

            # Closed here, by what refuses it: not every SQLAlchemy release closes a connection
            # whose connect event raised (2.0.37 left it to the garbage collector, after the loop).
            dbapi_connection.close()
            raise aiomysql.OperationalError(NO_TLS_CODE, "TLS was asked for, but the server offers none")
