"""Keeping passwords out of errors, logs and output: the one place that does it.

Every URL the library shows goes through `redact`; any text that did not
come from us (a driver's message may echo its connection string) goes
through `scrub` before it is shown.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url


def redact(url: str | URL) -> str:
    """The URL with its password replaced by ***, safe for errors and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not even a URL: show only its scheme
        return str(url).split(":", 1)[0] + "://…"


def url_password(url: str | URL | None) -> str | None:
    """The password in `url`, or None (no URL, no password, or not a URL at all)."""
    if not url:
        return None
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - not a URL: it holds no password we could find
        return None
    return str(password) if password else None


def scrub(text: str, password: str | None) -> str:
    """`text` with every occurrence of `password` replaced by ***."""
    return text.replace(password, "***") if password else text
