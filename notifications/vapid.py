"""The VAPID key pair (RFC 8292) that signs every push: from settings in production, a pair
generated once into ``var/`` under DEBUG (``make run``), so push works without setup."""

import base64
import functools
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from py_vapid import Vapid

from core.errors import Unavailable

NOT_CONFIGURED = "Web Push is not configured on this server (VAPID_PRIVATE_KEY)."


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _dev_key(path: Path) -> Vapid:
    """Load the development key pair, creating it first if no process has yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = Vapid()
        fresh.generate_keys()
        pem = fresh.private_pem()
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(pem)
        os.chmod(tmp, 0o600)
        try:
            # Atomic and exclusive: web, worker and beat may start at once; one key wins.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return Vapid.from_pem(path.read_bytes())


@functools.cache
def vapid() -> Vapid | None:
    """Return the signing key (``None``: push is off: no key and DEBUG off)."""
    private = settings.VAPID_PRIVATE_KEY.strip()
    if private:
        if private.startswith("-----BEGIN"):
            return Vapid.from_pem(private.encode())
        return Vapid.from_string(private)
    if settings.DEBUG:
        return _dev_key(Path(settings.VAPID_DEV_KEY_FILE))
    return None


def public_key() -> str:
    """Return the application server key for ``PushManager.subscribe`` (base64url)."""
    key = vapid()
    if key is None:
        raise Unavailable(NOT_CONFIGURED)
    raw = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    derived = _b64url(raw)
    configured = settings.VAPID_PUBLIC_KEY.strip()
    # A configured public key must be the private key's: a mismatch makes every push fail.
    if configured and configured.rstrip("=") != derived:
        raise Unavailable("VAPID_PUBLIC_KEY does not match VAPID_PRIVATE_KEY.")
    return derived
