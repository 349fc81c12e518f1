"""The VAPID key pair: a development pair generated once into var/, a configured one checked."""

import pytest

from core.errors import Unavailable
from notifications import vapid

from .conftest import vapid_private_raw


@pytest.fixture
def fresh(settings, tmp_path):
    settings.VAPID_PRIVATE_KEY = ""
    settings.VAPID_PUBLIC_KEY = ""
    settings.VAPID_DEV_KEY_FILE = tmp_path / "var" / "vapid-private.pem"
    vapid.vapid.cache_clear()
    yield settings
    vapid.vapid.cache_clear()


def test_debug_generates_one_pair_and_keeps_it(fresh):
    fresh.DEBUG = True
    first = vapid.public_key()
    assert fresh.VAPID_DEV_KEY_FILE.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert oct(fresh.VAPID_DEV_KEY_FILE.stat().st_mode & 0o777) == "0o600"
    vapid.vapid.cache_clear()  # another process
    assert vapid.public_key() == first


def test_without_a_key_and_debug_push_is_off(fresh):
    fresh.DEBUG = False
    assert vapid.vapid() is None
    with pytest.raises(Unavailable):
        vapid.public_key()
    assert not fresh.VAPID_DEV_KEY_FILE.exists()


def test_a_public_key_that_is_not_the_private_keys_is_refused(fresh):
    fresh.VAPID_PRIVATE_KEY = vapid_private_raw()
    derived = vapid.public_key()
    fresh.VAPID_PUBLIC_KEY = derived
    assert vapid.public_key() == derived
    fresh.VAPID_PUBLIC_KEY = derived[:-4] + "AAAA"
    with pytest.raises(Unavailable, match="does not match"):
        vapid.public_key()
