"""The app's pages: who sees what, and what the scripts are handed."""

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _page_data(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="page-data" type="application/json">') + len(
        '<script id="page-data" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_home_is_the_welcome_page_signed_out_and_the_app_signed_in(make_user):
    client = Client()
    response = client.get("/")
    assert response.status_code == 200
    assert b"Sign up" in response.content and b'id="chat"' not in response.content
    user = make_user("ann", display_name="<b>Ann</b>")
    client.force_login(user)
    response = client.get("/")
    assert b'id="chat"' in response.content
    data = _page_data(response)
    assert data["user_id"] == user.pk
    assert data["display_name"] == "<b>Ann</b>"  # escaped by json_script, intact as data
    assert b"<b>Ann</b>" not in response.content
    assert data["limits"]["message_max_chars"] == 4000


@pytest.mark.parametrize(
    ("path", "marker"), [("/c/5", b'id="chat"'), ("/meet/", b'id="meet"'), ("/live/", b'id="live"')]
)
def test_app_pages_need_a_login(make_user, path, marker):
    client = Client()
    response = client.get(path)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(make_user())
    response = client.get(path)
    assert response.status_code == 200 and marker in response.content
    assert b'id="conn"' in response.content  # the connection badge


def test_pages_carry_a_content_security_policy(make_user):
    client = Client()
    client.force_login(make_user())
    for path in ("/", "/meet/", "/live/", "/profile/"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, path
        assert "'unsafe-inline'" not in policy
        assert "connect-src 'self' ws://testserver" in policy
    signed_out = Client().get("/accounts/login/")
    assert "default-src 'self'" in signed_out["Content-Security-Policy"]
    # JSON answers need no policy; the third-party API docs run inline scripts.
    assert "Content-Security-Policy" not in client.get("/api/users?q=a")
    assert "Content-Security-Policy" not in client.get("/api/docs/")


def test_templates_have_no_inline_script_style_or_handler():
    """What the policy would block: a style attribute, a <style>, an inline script."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    inline = re.compile(
        r"""\sstyle\s*=|<style|\son[a-z]+\s*=|<script(?![^>]*\bsrc=)(?![^>]*application/json)"""
        r"""|javascript:""",
        re.IGNORECASE,
    )
    found = [
        f"{path.relative_to(root)}: {m.group(0)}"
        for path in sorted(root.rglob("*.html"))
        for m in inline.finditer(path.read_text())
    ]
    assert found == []
