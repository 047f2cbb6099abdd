"""MySQL/MariaDB over TLS, on a private MariaDB started with certificates made here.

aiomysql, given SQLAlchemy's reading of a URL's ``ssl_*`` options, would go
on in the clear when a server offers no TLS; sessionstore makes the options
a real TLS context and refuses a connection without TLS (sql/mysql_tls.py).
Checked: the right CA gives an encrypted connection (the server says which
cipher), a CA that did not sign the server's certificate is a typed TLS
error, a server without TLS is refused, and options that cannot work are a
ConfigurationError before anything connects.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

import sessionstore as ss
from tests.private_servers import PrivateMariaDB, run, started


async def make_ca(where: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = where / f"{name}.pem", where / f"{name}-key.pem"
    await run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(cert),
    )
    return cert, key


async def make_server_cert(where: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its IP in the subjectAltName, so hostnames verify), signed by `ca`."""
    cert, key, request, ext = where / "server.pem", where / "server-key.pem", where / "server.csr", where / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    await run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
              "-out", str(request))
    await run("openssl", "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
              "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key


@pytest.fixture(scope="module")
async def tls_mariadb() -> AsyncIterator[tuple[PrivateMariaDB, Path]]:
    """A private MariaDB serving TLS with a certificate signed by a CA of ours; (server, CA file)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    certs = Path(tempfile.mkdtemp(prefix="sessionstore-tls-certs-"))
    try:
        ca = await make_ca(certs, "ca")
        cert, key = await make_server_cert(certs, ca)

        def with_tls(server: PrivateMariaDB) -> None:
            server.extra_args = [f"--ssl-ca={ca[0]}", f"--ssl-cert={cert}", f"--ssl-key={key}"]

        async with started(PrivateMariaDB.create, "sessionstore-mariadb-tls-", with_tls) as server:
            yield server, ca[0]
    finally:
        shutil.rmtree(certs, ignore_errors=True)


async def cipher(svc: ss.SessionService) -> str:
    async with svc.engine.connect() as conn:  # type: ignore[attr-defined]
        return str((await conn.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'"))).one()[1])


async def test_the_right_ca_gives_an_encrypted_connection(tls_mariadb) -> None:
    server, ca = tls_mariadb
    url = server.url() + f"?ssl_ca={ca}"
    async with ss.open_service(url, cleanup_interval=None, auto_migrate=True, table_prefix="tls_") as svc:
        session = await svc.create_session(ss.Key("app", "u1", "s1"))
        await svc.append_event(session, ss.Event(author="user", content="over TLS"))
        assert (await svc.get_session(session.key)).events[0].content == "over TLS"
        assert await cipher(svc)  # the server names the cipher: the pool's connections are encrypted


async def test_a_ca_that_did_not_sign_the_server_is_a_typed_tls_error(tls_mariadb, tmp_path) -> None:
    server, _ = tls_mariadb
    stranger, _ = await make_ca(tmp_path, "stranger")
    with pytest.raises(ss.DatabaseError) as caught:
        async with ss.open_service(server.url() + f"?ssl_ca={stranger}", cleanup_interval=None, auto_migrate=True) as svc:
            await svc.create_session(ss.Key("app", "u1"))
    assert "the TLS (SSL) connection failed" in str(caught.value)


async def test_a_server_without_tls_is_refused_not_used_in_the_clear(tmp_path) -> None:
    async with started(PrivateMariaDB.create, "sessionstore-mariadb-plain-") as server:
        ca, _ = await make_ca(tmp_path, "ca")
        with pytest.raises(ss.DatabaseError) as caught:
            async with ss.open_service(server.url() + f"?ssl_ca={ca}", cleanup_interval=None, auto_migrate=True) as svc:
                await svc.create_session(ss.Key("app", "u1"))
        assert "the TLS (SSL) connection failed" in str(caught.value) and "offers none" in str(caught.value)
        async with ss.open_service(server.url() + "?ssl=false", cleanup_interval=None, auto_migrate=True) as svc:
            await svc.create_session(ss.Key("app", "u1"))  # asked for no TLS: fine


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("ssl=maybe", "ssl must be true or false"),
        ("ssl_ca=/no/such/ca.pem", "cannot be used"),
        ("ssl_key=/tmp/k.pem", "ssl_key needs ssl_cert"),
        ("ssl=false&ssl_ca=/etc/ssl/certs/ca-certificates.crt", "contradicts"),
        ("ssl_check_hostname=perhaps&ssl=true", "ssl_check_hostname must be true or false"),
    ],
)
def test_tls_options_that_cannot_work_are_refused_before_connecting(query: str, says: str) -> None:
    with pytest.raises(ss.ConfigurationError) as caught:
        ss.open_service(f"mysql://root@127.0.0.1:1/test?{query}", cleanup_interval=None)
    assert says in str(caught.value)
