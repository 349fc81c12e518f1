"""A real Celery worker for the module, a mail directory it writes to (Django's file
backend), a VAPID key pair it signs with, and a local push service it delivers to."""

import base64
import email
import email.policy
import json
import os
import socket
import threading
import time
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.redis import bus
from notifications import vapid
from switchboard.embedded_redis import free_port
from tests.celery_processes import Celery, process_env

# Short timings for the worker: away after 1 s, a scan may run every second.
AWAY_SECONDS = "1"
SCAN_SECONDS = "1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vapid_private_raw() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


@pytest.fixture(scope="module")
def vapid_key() -> str:
    return vapid_private_raw()


@pytest.fixture
def vapid_settings(settings, vapid_key):
    """The test process signs and publishes with the worker's key pair."""
    settings.VAPID_PRIVATE_KEY = vapid_key
    settings.VAPID_PUBLIC_KEY = ""
    settings.PUSH_ALLOW_LOCAL_ENDPOINTS = True  # the push service of the test is on loopback
    vapid.vapid.cache_clear()
    yield vapid_key
    vapid.vapid.cache_clear()


@pytest.fixture(scope="module")
def mail_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mail")


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, mail_dir, vapid_key):
    """One real prefork worker for the module (no beat: tests send the scan themselves)."""
    procs = Celery(
        process_env(
            EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            EMAIL_FILE_PATH=str(mail_dir),
            LIMIT_NOTIFY_AWAY_SECONDS=AWAY_SECONDS,
            LIMIT_NOTIFY_SCAN_SECONDS=SCAN_SECONDS,
            VAPID_PRIVATE_KEY=vapid_key,
            SITE_URL="http://switchboard.test",
        )
    )
    proc = procs.worker()
    yield proc
    procs.stop_all()


def mails(mail_dir: Path, to: str | None = None) -> list[EmailMessage]:
    """Every message the file backend wrote (one file per connection, messages split by dashes)."""
    out = []
    for path in sorted(mail_dir.glob("*.log")):
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                msg = email.message_from_bytes(chunk, policy=email.policy.default)
                if to is None or msg["To"] == to:
                    out.append(msg)  # type: ignore[arg-type]
    return out


def wait_for(condition, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {condition}")
        time.sleep(interval)


def worker_drained(proc) -> bool:
    """True when the broker queue is empty and the worker runs and holds nothing (twice)."""
    from django.conf import settings

    from switchboard.celery import app

    node = f"{proc.name}@{socket.gethostname()}"
    queue = f"{settings.REDIS_KEY_PREFIX}:celery:celery"
    for _ in range(2):
        if bus().llen(queue):
            return False
        inspect = app.control.inspect(destination=[node], timeout=1.0)
        active, reserved = inspect.active() or {}, inspect.reserved() or {}
        if active.get(node) or reserved.get(node) or node not in active:
            return False
        time.sleep(0.1)
    return True


class PushService:
    """A push service on a spare loopback port: records every push; answers 201, or 410 for
    endpoints under /gone/."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.port = free_port()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                service.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                gone = self.path.startswith("/gone/")
                self.send_response(410 if gone else 201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[dict]:
        return [r for r in self.received if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def push_service():
    service = PushService()
    yield service
    service.close()


class Browser:
    """A browser's side of a push subscription: its P-256 key pair and auth secret."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    @property
    def p256dh(self) -> str:
        return b64url(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def subscription(self, endpoint: str) -> dict:
        return {"endpoint": endpoint, "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> dict:
        import http_ece

        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)
