"""Production safety of the settings, checked in fresh processes (settings load once)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, **env_overrides):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG"}
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_refuses_to_start_without_a_real_secret_key_when_debug_is_off():
    res = _manage("check", DEBUG="false")
    assert res.returncode != 0
    assert "SECRET_KEY must be set" in res.stderr


def test_check_deploy_is_clean_apart_from_tls_termination():
    res = _manage(
        "check", "--deploy", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="switchboard.example",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    ids = {line.split(")")[0].split("(")[-1] for line in res.stderr.splitlines() if "?: (" in line}
    # HSTS and the HTTPS redirect belong to the TLS-terminating proxy (docs/deployment.md).
    assert ids == {"security.W004", "security.W008"}


def test_openapi_schema_generates_without_warnings(tmp_path):
    res = _manage(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"),
        DEBUG="true",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "/api/conversations/{conversation_id}/messages" in (tmp_path / "schema.yml").read_text()


def _asgi_gc_thresholds(**env_overrides):
    code = "import gc, switchboard.asgi; print(*gc.get_threshold())"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_a_web_process_collects_garbage_with_the_configured_thresholds():
    res = _asgi_gc_thresholds()
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["700", "10", "100"]  # full collections 10x rarer
    res = _asgi_gc_thresholds(GC_THRESHOLDS="2000,20,50")
    assert res.stdout.split() == ["2000", "20", "50"], res.stderr
    for bad in ("700,10", "a,b,c", "700,0,10"):
        res = _asgi_gc_thresholds(GC_THRESHOLDS=bad)
        assert res.returncode != 0 and "GC_THRESHOLDS must be three positive integers" in (
            res.stderr
        )
