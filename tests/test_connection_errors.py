"""Failures to connect say what went wrong and the likely fix, in one line naming the redacted URL.

Each case is a real failure (a closed port, an unresolvable name, a role or database the
server does not have, TLS the server does not offer, a SQLite file that cannot be opened or
written) seen through the service, through ``migrate()`` and through the command line, which
prints the same text in every command and exits 1 (runtime failure).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import sessionstore as ss
from sessionstore.cli import app
from sessionstore.sql.engine import make_engine
from tests.cli_runner import cli_runner
from tests.dbs import server_url

PASSWORD = "s3cret-pw"


async def _server(kind: str, **parts: object) -> str:
    url = make_url(await server_url(kind)).set(**parts)  # type: ignore[arg-type]
    return url.render_as_string(hide_password=False)


async def _offers_tls() -> bool:
    engine = make_engine(await server_url("mysql"))
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT @@have_ssl"))).scalar() == "YES"
    finally:
        await engine.dispose()


async def _case_url(case: str, tmp_path: Path) -> str:
    if case == "refused-postgresql":
        return f"postgresql://app:{PASSWORD}@127.0.0.1:1/agents"
    if case == "refused-mysql":
        return f"mysql://app:{PASSWORD}@127.0.0.1:1/agents"
    if case == "dns-postgresql":
        return f"postgresql://app:{PASSWORD}@db.invalid/agents"
    if case == "dns-mysql":
        return f"mysql://app:{PASSWORD}@db.invalid/agents"
    if case == "auth-postgresql":
        return await _server("postgresql", username="no_such_role", password=PASSWORD)
    if case == "auth-mysql":
        return await _server("mysql", username="no_such_user", password=PASSWORD)
    if case == "database-postgresql":
        return await _server("postgresql", database="no_such_database")
    if case == "database-mysql":
        return await _server("mysql", database="no_such_database")
    if case == "tls-postgresql":  # the CA file verify-full needs is not there (and the server may offer no TLS)
        return await _server("postgresql", query={"ssl": "verify-full"})
    if case == "tls-mysql":  # TLS asked for; the shared server offers none (aiomysql alone would go on in the clear)
        if await _offers_tls():
            pytest.skip("this MariaDB offers TLS; tests/test_mysql_tls.py covers a server with and without it")
        return await _server("mysql", query={"ssl": "true"})
    if case == "sqlite-directory":
        return f"sqlite:///{tmp_path}/no/such/dir/app.db"
    if case == "sqlite-read-only":  # a file opened read-only (root ignores file modes, so say it in the URL)
        path = tmp_path / "ro.db"
        sqlite3.connect(path).close()
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    raise AssertionError(case)


CASES = {
    "refused-postgresql": ("connection refused", "is the server running and accepting connections on 127.0.0.1:1?"),
    "refused-mysql": ("connection refused", "is the server running and accepting connections on 127.0.0.1:1?"),
    "dns-postgresql": ("the host 'db.invalid' was not found (DNS)", "check the host name in the URL"),
    "dns-mysql": ("the host 'db.invalid' was not found (DNS)", "check the host name in the URL"),
    "auth-postgresql": ("the server refused the user name or password", "check the user and password in the URL"),
    "auth-mysql": ("the server refused the user name or password", "check the user and password in the URL"),
    "database-postgresql": ("the database does not exist", "create it first"),
    "database-mysql": ("the database does not exist", "create it first"),
    "tls-postgresql": ("the TLS (SSL) connection failed", "check the URL's ssl/sslmode options"),
    "tls-mysql": ("the TLS (SSL) connection failed", "check the URL's ssl options"),
    "sqlite-directory": ("the SQLite file cannot be opened", "check that its directory exists"),
    "sqlite-read-only": ("the SQLite file is read-only", "give this process write access"),
}


def _check_message(text: str, url: str, case: str) -> None:
    reason, fix = CASES[case]
    shown = make_url(url).render_as_string(hide_password=True).split("://", 1)[1]
    assert text.count("\n") == 0, text
    assert reason in text and fix in text, text
    assert shown in text, (shown, text)  # the URL (driver named), password hidden
    assert PASSWORD not in text


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_service_says_what_failed_and_the_fix(case, tmp_path):
    url = await _case_url(case, tmp_path)
    with pytest.raises(ss.DatabaseError) as caught:
        async with ss.open_service(url, cleanup_interval=None) as svc:
            await svc.create_session(ss.Key("app", "u1"))
    _check_message(str(caught.value), url, case)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "sqlite-read-only"))  # migrate() reads first
async def test_migrate_says_what_failed_and_the_fix(case, tmp_path):
    url = await _case_url(case, tmp_path)
    with pytest.raises(ss.DatabaseError) as caught:
        await ss.migrate(url)
    _check_message(str(caught.value), url, case)


async def test_a_read_only_sqlite_file_with_an_old_schema_fails_to_migrate_with_the_fix(tmp_path):
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # empty: migrate must write
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    with pytest.raises(ss.DatabaseError) as caught:
        await ss.migrate(url)
    _check_message(str(caught.value), url, "sqlite-read-only")


@pytest.mark.parametrize("case", ["refused-postgresql", "dns-mysql", "database-postgresql", "sqlite-directory"])
def test_every_command_prints_the_same_line_and_exits_1(case, tmp_path):
    url = asyncio.run(_case_url(case, tmp_path))  # (a plain test: the commands run their own event loop)
    if case == "sqlite-directory":  # cleanup refuses a missing file before connecting (a usage error)
        commands = [["db", "upgrade"], ["db", "current"], ["db", "check"], ["db", "stamp", "head"]]
    else:
        commands = [["db", "upgrade"], ["db", "current"], ["db", "check"], ["db", "stamp", "head"],
                    ["db", "downgrade", "base"], ["cleanup", "--once"]]
    runner = cli_runner()
    lines = set()
    for command in commands:
        result = runner.invoke(app, [*command, "--url", url])
        assert result.exit_code == 1, (command, result.output)
        assert result.stdout == ""
        lines.add(result.stderr)
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith("error: ")
    _check_message(line.removeprefix("error: ").rstrip("\n"), url, case)
