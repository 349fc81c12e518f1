"""Real headless Chromium (Debian's ``chromium``) driven by Playwright, against real servers.

Each test opens one browser context per user (separate cookies and storage, like two
people on two machines). When a test fails, every page it opened is saved as a screenshot
under ``test-artifacts/`` with the page's console log next to it.

Accessibility: at the end of every test that passed, axe-core (vendored, ``vendor/axe-core``)
runs on every page still open in every context ``people`` opened, and the test fails on
any serious or critical violation (``axe_violations``; ``assert_accessible`` checks a page
in the middle of a test, e.g. a state the test leaves again).
"""

import contextlib
import functools
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.celery_processes import celery_procs  # noqa: F401  (fixture: worker, beat)
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # WebRTC with a synthetic camera and microphone, permission granted without a prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Background contexts must keep their timers (heartbeat) running at full speed.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct-horse-battery-9"
# Generous: the 2-core machine runs other helpers' tests at the same time.
EXPECT_TIMEOUT_MS = 20_000
AXE_SCRIPT = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# What fails a test; "moderate" and "minor" findings are not checked.
AXE_IMPACTS = ("serious", "critical")
# Third-party pages (Swagger UI, ReDoc, Django's admin): not ours to fix.
AXE_EXEMPT_PATHS = ("/api/", "/admin/", "/static/")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="package")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make test` installs it with apt-get")
    # Playwright's sync API keeps an event loop running in this thread, which makes Django
    # refuse ORM calls from the test body (make_user, services). This package's tests call
    # the ORM only from plain synchronous code, so the check is off here, and only here:
    # the server processes do not inherit it (server_env below).
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as p:
            yield p
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture
def server_env(server_env):
    """The shared server environment, without this package's ORM-in-event-loop allowance."""
    env = dict(server_env)
    env.pop(ASYNC_UNSAFE, None)
    return env


@pytest.fixture(scope="package")
def browser(playwright_instance):
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class Person:
    """One user in one browser context: ``page`` plus what the test recorded about it."""

    def __init__(self, user, context, page, server):
        self.user, self.context, self.page, self.server = user, context, page, server
        self.errors: list[str] = []
        self.console: list[str] = []
        self.dialogs: list[str] = []

    def goto(self, path: str):
        self.page.goto(self.server.url + path)
        return self.page


@pytest.fixture
def people(browser, request):
    """``people(user, server, path="/")`` -> a Person signed in through the login page.

    ``viewport={"width": 390, "height": 844}``: a phone's screen (default 1280 x 720).
    """
    opened: list[Person] = []

    def open_as(user, server, path="/", *, permissions=(), viewport=None):
        options = {"viewport": viewport} if viewport else {}
        context = browser.new_context(base_url=server.url, permissions=list(permissions), **options)
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        page = context.new_page()
        person = Person(user, context, page, server)
        page.on("pageerror", lambda exc: person.errors.append(str(exc)))
        page.on("console", lambda msg: person.console.append(f"{msg.type}: {msg.text}"))

        def on_websocket(ws):
            # Kept for the failure log: what the page and the server said to each other.
            ws.on("framesent", lambda f: person.console.append(f"ws>> {str(f)[:300]}"))
            ws.on("framereceived", lambda f: person.console.append(f"ws<< {str(f)[:300]}"))
            ws.on("close", lambda _ws: person.console.append("ws closed"))

        page.on("websocket", on_websocket)

        def on_dialog(dialog):
            person.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(f"{server.url}/accounts/login/?next={path}")
        page.get_by_label("Username").fill(user.get_username())
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(re.escape(server.url + path.split("?")[0])))
        opened.append(person)
        return person

    yield open_as
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::")[-1])
        for i, person in enumerate(opened):
            base = ARTIFACTS / f"{stem}-{i}-{person.user.get_username()}"
            try:
                if not person.page.is_closed():
                    # A page in the background may never paint: bring it forward first.
                    person.page.bring_to_front()
                    person.page.screenshot(path=f"{base}.png", timeout=10_000)
            except Exception:  # a crashed page must not hide the test's own failure
                pass
            base.with_suffix(".console.txt").write_text(
                "\n".join(person.console + [f"pageerror: {e}" for e in person.errors])
            )
    inaccessible: dict[str, list[str]] = {}
    if not failed:
        for person in opened:
            for i, page in enumerate(person.context.pages):
                found = axe_violations(page)
                if found:
                    inaccessible[f"{person.user.get_username()} page {i} {page.url}"] = found
    for person in opened:
        with contextlib.suppress(Exception):
            person.context.close()
    if not failed:
        assert not inaccessible, "axe-core found serious or critical violations:\n" + "\n".join(
            f"{where}:\n  " + "\n  ".join(found) for where, found in inaccessible.items()
        )
        errors = {p.user.get_username(): p.errors for p in opened if p.errors}
        assert not errors, f"uncaught errors in the pages: {errors}"
        # The browser reports what the Content-Security-Policy blocked on the console.
        blocked = {
            p.user.get_username(): [m for m in p.console if "Content Security Policy" in m]
            for p in opened
        }
        blocked = {name: lines for name, lines in blocked.items() if lines}
        assert not blocked, f"the pages broke their Content-Security-Policy: {blocked}"


_AXE_RUN = """async (impacts) => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => impacts.includes(v.impact))
    .map((v) => `${v.impact} ${v.id}: ${v.help} -- ` + v.nodes.slice(0, 5)
      .map((n) => `${n.target.join(" ")} (${n.failureSummary.replace(/\\s+/g, " ")})`)
      .join("; "));
}"""


def axe_violations(page) -> list[str]:
    """Run axe-core on ``page`` as it is now; return its serious and critical violations.

    One line per rule broken (impact, rule id, help, the first few elements). A closed page,
    one outside the app (``AXE_EXEMPT_PATHS``, ``about:blank``) returns none. The script is
    injected with ``page.evaluate`` (the DevTools protocol), which the page's
    Content-Security-Policy does not see, so nothing in the page changes to allow it.
    """
    if page.is_closed():
        return []
    path = urlsplit(page.url).path
    if not page.url.startswith("http") or path.startswith(AXE_EXEMPT_PATHS):
        return []
    page.wait_for_load_state()
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    return page.evaluate(_AXE_RUN, list(AXE_IMPACTS))


def assert_accessible(page, state: str = "") -> None:
    """Fail unless axe-core finds no serious or critical violation on ``page`` right now."""
    found = axe_violations(page)
    assert not found, f"axe-core, {state or page.url}:\n  " + "\n  ".join(found)


@functools.cache
def _axe_source() -> str:
    # Evaluated as an expression: axe's UMD wrapper then defines window.axe.
    return AXE_SCRIPT.read_text() + "\n;true"


def wait_for_js(page, expression: str, timeout: float = EXPECT_TIMEOUT_MS) -> None:
    """Wait until ``expression`` (JS) is truthy in ``page``, polling from here.

    Playwright's ``wait_for_function`` evaluates its predicate with ``eval`` inside the
    page, which the pages' Content-Security-Policy refuses (no ``'unsafe-eval'``);
    ``page.evaluate`` goes through the DevTools protocol, which the policy does not see.
    """
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} ms: {expression}")
        page.wait_for_timeout(100)


def in_thread(func, /, *args, **kwargs):
    """Run ``func`` (a service that pushes events) in a thread with no event loop.

    The push goes through ``core.loop.loop_run``, which refuses to run inside an event
    loop, and Playwright's sync API keeps one running in the test's thread.
    """
    from django.db import connection

    def call():
        try:
            return func(*args, **kwargs)
        finally:
            connection.close()  # or the test database cannot be dropped

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=60)
