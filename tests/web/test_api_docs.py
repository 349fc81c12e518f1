"""The API docs (Swagger UI, ReDoc) work without internet: every file from this site."""

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = ("/api/docs/", "/api/redoc/")
# ReDoc's bundle always asks for its maker's logo (an <img> that hides itself when it fails
# to load); the only request to another host either page makes.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# An absolute or protocol-relative URL in a src, href or url() (a CDN script, a web font).
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//""")


def test_docs_pages_reference_nothing_outside_the_site(servers):
    (server,) = servers(1)
    for path in DOCS:
        page = httpx.get(server.url + path, timeout=10)
        assert page.status_code == 200
        assert not EXTERNAL.findall(page.text), path
        assert "https://" not in page.text and "http://" not in page.text, path
        for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", page.text):
            assert httpx.get(server.url + asset, timeout=10).status_code == 200, asset


def test_swagger_ui_and_redoc_render_with_other_hosts_blocked(servers, browser):
    (server,) = servers(1)
    own = urlsplit(server.url).netloc
    blocked: list[str] = []
    context = browser.new_context()

    def only_this_site(route):
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_this_site)
    try:
        page = context.new_page()
        page.goto(server.url + "/api/docs/")
        # Swagger UI drew the operations from the schema.
        expect(page.locator(".opblock").first).to_be_visible()
        assert page.locator(".opblock").count() >= 10
        expect(page.locator(".opblock-summary-path", has_text="/api/auth/signup")).to_be_visible()
        page.goto(server.url + "/api/redoc/")
        expect(
            page.get_by_role("heading", name=re.compile("Switchboard API")).first
        ).to_be_visible()
        expect(page.get_by_text("/api/auth/signup").first).to_be_attached()
    finally:
        context.close()
    assert [url for url in blocked if url != REDOC_LOGO] == []
