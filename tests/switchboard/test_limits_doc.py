"""docs/limits.md names every bound and expiry in settings, so the doc cannot fall behind."""

from pathlib import Path

from django.conf import settings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "limits.md").read_text()


def test_every_limit_is_documented():
    missing = [name for name in settings.LIMITS if f"`{name}`" not in DOC]
    assert missing == []


def test_every_ttl_is_documented():
    missing = [name for name in settings.TTLS if f"`{name}`" not in DOC]
    assert missing == []
