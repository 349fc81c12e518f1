"""The edge of the multi-machine topology on loopback: a PgBouncer in front of the test's
PostgreSQL and an nginx in front of web processes, each a process of the test's own on a
spare port, its files in a temporary directory (the system services are never used).

``nginx_conf`` turns the shipped ``deploy/nginx.conf`` into the tested one with a few
substitutions, each of which must match the shipped file exactly once: the upstream's
``server web:8000`` line becomes one line per web process (its parameters kept), the listen
lines become loopback ports, the certificate paths a self-signed pair, and the TLS listener a
plain one (the test clients speak ``ws://``). Everything else (upgrade headers, timeouts,
passive checks, the forwarded headers) runs as shipped, so the file and the test cannot drift.
"""

import contextlib
import datetime
import os
import pwd
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from switchboard.embedded_redis import free_port
from switchboard.servers import ROOT, ManagedProcess, ServerProcess

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# PgBouncer refuses to run as root; started as root it switches to this user (``user =``).
UNPRIVILEGED_USER = "nobody"
# The address nginx connects to the web processes from (``proxy_bind``): the one address they
# trust for X-Forwarded-For, as the compose file's fixed nginx address.
NGINX_UPSTREAM_SOURCE = "127.0.0.2"


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class PgBouncer(ManagedProcess):
    """PgBouncer 1.18 in transaction mode on a spare port, for every database of ``target``.

    Trust authentication (loopback only, ``userlist.txt`` names the one user); at most
    ``pool_size`` server connections per database and user, whatever the number of clients.
    """

    def __init__(self, *, target_host: str, target_port: int, user: str, pool_size: int) -> None:
        self.port = free_port()
        self.user = user
        self.pool_size = pool_size
        self.dir = Path(tempfile.mkdtemp(prefix="sbtest-pgbouncer-"))
        users = self.dir / "userlist.txt"
        users.write_text(f'"{user}" ""\n')
        ini = self.dir / "pgbouncer.ini"
        lines = [
            "[databases]",
            f"* = host={target_host} port={target_port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {users}",
            "pool_mode = transaction",
            f"default_pool_size = {pool_size}",
            "min_pool_size = 0",
            "reserve_pool_size = 0",
            "max_client_conn = 200",
            f"admin_users = {user}",
            # Django's psycopg connections send none, but a client's options must not fail.
            "ignore_startup_parameters = extra_float_digits,options",
        ]
        if os.geteuid() == 0:
            pwd.getpwnam(UNPRIVILEGED_USER)  # fails clearly if the user is missing
            lines.append(f"user = {UNPRIVILEGED_USER}")
        ini.write_text("\n".join(lines) + "\n")
        super().__init__(
            label="pgbouncer",
            command=[PGBOUNCER, str(ini)],
            env=dict(os.environ),
            log=ROOT / "test-artifacts" / f"pgbouncer-{self.port}.log",
            start_timeout=20,
        )

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> "PgBouncer":
        self.spawn()
        self.wait_until(lambda: _port_open(self.port))
        return self

    def show(self, what: str) -> list[dict[str, Any]]:
        """Rows of the admin console's ``SHOW <what>`` (POOLS, SERVERS, CLIENTS ...)."""
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            dbname="pgbouncer",
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,  # the console speaks the simple protocol only
        ) as conn:
            cursor = conn.execute(f"SHOW {what}")
            names = [c.name for c in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def pgbouncer(**kwargs: Any) -> Iterator[PgBouncer]:
    server = PgBouncer(**kwargs).start()
    try:
        yield server
    finally:
        server.destroy()


# -- web processes -----------------------------------------------------------------------

# Four of these tests' processes start side by side under pytest-xdist on a loaded machine:
# more room than the suite's usual 30 s.
WEB_START_TIMEOUT_SECONDS = 90


@contextlib.contextmanager
def web_processes(
    env: dict[str, str], args: Sequence[str], names: Sequence[str] = ("a", "b")
) -> Iterator[list[ServerProcess]]:
    """Web processes (uvicorn with ``args``), one per name, started side by side; stopped."""
    procs = [
        ServerProcess(
            env=env, log_dir=ROOT / "test-artifacts", args=args, name=name,
            start_timeout=WEB_START_TIMEOUT_SECONDS,
        )
        for name in names
    ]  # fmt: skip
    try:
        for proc in procs:
            proc.spawn()
        for proc in procs:
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.stop()


# -- nginx -------------------------------------------------------------------------------

SHIPPED_NGINX_CONF = ROOT / "deploy" / "nginx.conf"
_UPSTREAM_SERVER = re.compile(r"^(\s*)server web:8000( [^;]*)?;.*$", re.M)


def _once(pattern: str, replacement: str, text: str) -> str:
    found = len(re.findall(pattern, text, flags=re.M))
    if found != 1:
        raise AssertionError(f"deploy/nginx.conf: {pattern!r} found {found} times, not once")
    return re.sub(pattern, replacement, text, flags=re.M)


def nginx_conf(
    *, upstreams: Sequence[int], port: int, redirect_port: int, cert: Path, key: Path, prefix: Path
) -> str:
    """The whole nginx.conf of a test: ``deploy/nginx.conf`` in an http block of its own, with
    the substitutions of the module's docstring and the process' files under ``prefix``."""
    shipped = SHIPPED_NGINX_CONF.read_text()
    match = _UPSTREAM_SERVER.search(shipped)
    if match is None or len(_UPSTREAM_SERVER.findall(shipped)) != 1:
        raise AssertionError("deploy/nginx.conf: one 'server web:8000 ...;' line expected")
    indent, params = match.group(1), match.group(2) or ""
    servers = "\n".join(f"{indent}server 127.0.0.1:{p}{params};" for p in upstreams)
    conf = shipped[: match.start()] + servers + shipped[match.end() :]
    conf = _once(r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{redirect_port};", conf)
    conf = _once(r"^(\s*)listen 443 ssl http2;", rf"\1listen 127.0.0.1:{port};", conf)
    conf = _once(r"^(\s*)ssl_certificate\s+(\S+);", rf"\1ssl_certificate {cert};", conf)
    conf = _once(r"^(\s*)ssl_certificate_key\s+(\S+);", rf"\1ssl_certificate_key {key};", conf)
    return "\n".join(
        [
            f"pid {prefix / 'nginx.pid'};",
            f"error_log {prefix / 'error.log'} info;",
            "worker_processes 1;",
            "events { worker_connections 1024; }",
            "http {",
            f"    access_log {prefix / 'access.log'};",
            f"    client_body_temp_path {prefix / 'client_body'};",
            f"    proxy_temp_path {prefix / 'proxy'};",
            f"    fastcgi_temp_path {prefix / 'fastcgi'};",
            f"    uwsgi_temp_path {prefix / 'uwsgi'};",
            f"    scgi_temp_path {prefix / 'scgi'};",
            # As nginx's fixed address in the compose network: what the web processes trust.
            f"    proxy_bind {NGINX_UPSTREAM_SOURCE};",
            conf,
            "}",
            "",
        ]
    )


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (only so the shipped ssl_* lines load)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Nginx(ManagedProcess):
    """nginx (``-p <tmp> -c <conf> -g 'daemon off;'``) before the web ports ``upstreams``."""

    def __init__(self, *, upstreams: Sequence[int]) -> None:
        self.port = free_port()
        self.redirect_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.dir = Path(tempfile.mkdtemp(prefix="sbtest-nginx-"))
        cert, key = self_signed(self.dir)
        conf = self.dir / "nginx.conf"
        conf.write_text(
            nginx_conf(
                upstreams=upstreams,
                port=self.port,
                redirect_port=self.redirect_port,
                cert=cert,
                key=key,
                prefix=self.dir,
            )
        )
        super().__init__(
            label="nginx",
            command=[NGINX, "-p", str(self.dir), "-c", str(conf), "-g", "daemon off;"],
            env=dict(os.environ),
            log=ROOT / "test-artifacts" / f"nginx-{self.port}.log",
            start_timeout=20,
        )

    def start(self) -> "Nginx":
        self.spawn()
        self.wait_until(lambda: _port_open(self.port))
        return self

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def nginx(**kwargs: Any) -> Iterator[Nginx]:
    server = Nginx(**kwargs).start()
    try:
        yield server
    finally:
        server.destroy()
