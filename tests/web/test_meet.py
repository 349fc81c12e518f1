"""Meet in the browser: two people matched on a shared interest talk by text and WebRTC."""

import pytest
from playwright.sync_api import expect

from tests.web.conftest import in_thread, wait_for_js

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MEDIA = ("camera", "microphone")
CONNECTED = "window.meet && window.meet.pc && window.meet.pc.connectionState === 'connected'"


def test_matched_pair_chats_and_reaches_a_connected_webrtc_call(servers, people, make_user):
    # No STUN server: the browsers must not reach outside this machine (host candidates do).
    (server,) = servers(1, MEET_STUN_URLS="", MEET_TURN_URLS="")
    ann = make_user("ann", display_name="Ann", interests=["chess", "music"])
    bob = make_user("bob", display_name="Bob", interests=["chess", "hiking"])
    a = people(ann, server, "/meet/", permissions=MEDIA).page
    b = people(bob, server, "/meet/", permissions=MEDIA).page
    expect(a.locator("#meet-interests li")).to_have_count(2)  # from the profile
    expect(a.locator("#conn")).to_have_attribute("data-state", "open")
    expect(b.locator("#conn")).to_have_attribute("data-state", "open")

    a.get_by_role("button", name="Find a match").click()
    expect(a.locator("#meet-waiting")).to_be_visible()
    expect(a.locator("#meet-elapsed")).not_to_have_text("0:00")  # the clock runs
    b.get_by_role("button", name="Find a match").click()

    for page, partner in ((a, "Bob"), (b, "Ann")):
        expect(page.locator("#meet-matched")).to_be_visible()
        expect(page.locator("#partner-name")).to_have_text(partner)
        expect(page.locator("#shared-interests li")).to_have_text(["chess"])
    # The initiator offers, the other answers, candidates trickle: both ends connect.
    wait_for_js(a, CONNECTED, timeout=45_000)
    wait_for_js(b, CONNECTED, timeout=45_000)
    expect(a.locator("#videos")).to_have_attribute("data-connection", "connected")
    assert a.evaluate("window.meet.pc.getReceivers().some((r) => r.track.kind === 'video')")

    # Text both ways.
    a.get_by_label("Message to your match").fill("hi <b>Bob</b>")
    a.get_by_label("Message to your match").press("Enter")
    expect(b.locator("#meet-log .msg-body")).to_have_text(["hi <b>Bob</b>"])
    b.get_by_label("Message to your match").fill("hello")
    b.get_by_label("Message to your match").press("Enter")
    expect(a.locator("#meet-log .msg-body")).to_have_text(["hi <b>Bob</b>", "hello"])

    # Mute toggles the microphone track off, and back.
    a.get_by_role("button", name="Mute").click()
    expect(a.get_by_role("button", name="Unmute")).to_have_attribute("aria-pressed", "true")
    audio_enabled = (
        "window.meet.pc.getSenders().filter((s) => s.track && s.track.kind === 'audio')"
        ".map((s) => s.track.enabled)"
    )
    assert a.evaluate(audio_enabled) == [False]

    # Bob moves on: Ann's call ends and she is told; Bob is searching again.
    b.get_by_role("button", name="Next").click()
    expect(b.locator("#meet-waiting")).to_be_visible()
    expect(a.locator("#meet-ended-text")).to_have_text("Bob moved on.")
    assert a.evaluate("window.meet.pc") is None


def test_report_with_block_ends_the_match_for_both(servers, people, make_user):
    from matching.models import Report
    from relations.models import Block

    (server,) = servers(1, MEET_STUN_URLS="", MEET_TURN_URLS="")
    ann = make_user("ann", display_name="Ann", interests=["chess"])
    bob = make_user("bob", display_name="Bob", interests=["chess"])
    a = people(ann, server, "/meet/", permissions=MEDIA).page
    b = people(bob, server, "/meet/", permissions=MEDIA).page
    for page in (a, b):
        expect(page.locator("#meet-interests li")).to_have_count(1)
        page.get_by_role("button", name="Find a match").click()
    for page in (a, b):
        expect(page.locator("#meet-matched")).to_be_visible()

    a.get_by_role("button", name="Report").click()
    a.get_by_label("Reason").select_option("spam")
    a.get_by_label("What happened (optional)").fill("<script>alert(1)</script> links")
    a.get_by_role("button", name="Send report").click()
    expect(a.locator("#meet-ended-text")).to_have_text(
        "You blocked Bob. You will not be matched again."
    )
    expect(b.locator("#meet-ended-text")).to_have_text("The chat has ended.")
    for page in (a, b):
        wait_for_js(page, "window.meet.pc === null")
    report = Report.objects.get()
    assert (report.reason, report.text) == ("spam", "<script>alert(1)</script> links")
    assert Block.objects.filter(blocker=ann, blocked=bob).exists()


PLAYING = (
    "(() => { const v = document.getElementById('remote-video');"
    " return !!v && v.videoWidth > 0 && !v.paused && v.readyState >= 2; })()"
)


def _matched_pair(servers, people, make_user, **env):
    (server,) = servers(1, MEET_STUN_URLS="", MEET_TURN_URLS="", **env)
    ann = make_user("ann", display_name="Ann", interests=["chess"])
    bob = make_user("bob", display_name="Bob", interests=["chess"])
    a = people(ann, server, "/meet/", permissions=MEDIA)
    b = people(bob, server, "/meet/", permissions=MEDIA)
    for page in (a.page, b.page):
        expect(page.locator("#meet-interests li")).to_have_count(1)
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        page.get_by_role("button", name="Find a match").click()
    for page, partner in ((a.page, "Bob"), (b.page, "Ann")):
        expect(page.locator("#partner-name")).to_have_text(partner)
    return server, a, b


def test_the_partner_closing_the_tab_ends_the_match_within_the_grace(
    servers, people, make_user, celery_procs, settings
):
    from matching.models import Match
    from ops.schedules import schedules_install

    in_thread(schedules_install)  # the pool sweep, as `make run` installs it
    server, a, b = _matched_pair(servers, people, make_user)
    celery_procs.worker()
    celery_procs.beat()
    wait_for_js(a.page, CONNECTED, timeout=45_000)
    b.page.close()
    # Documented: the grace, then at most one sweep period (slack for a loaded machine).
    limits = settings.LIMITS
    within = (limits["MEET_PARTNER_GRACE_SECONDS"] + limits["MATCH_SWEEP_SECONDS"]) * 1000
    expect(a.page.locator("#meet-ended-text")).to_have_text("Bob left.", timeout=within + 10_000)
    wait_for_js(a.page, "window.meet.pc === null")
    match = Match.objects.get()
    assert (match.end_reason, match.ended_by_id) == ("partner_left", b.user.pk)
    a.page.get_by_role("button", name="Find someone new").click()
    expect(a.page.locator("#meet-waiting")).to_be_visible()


def test_a_reload_or_a_second_tab_goes_back_to_the_call_with_video(servers, people, make_user):
    server, a, b = _matched_pair(servers, people, make_user)
    for page in (a.page, b.page):
        wait_for_js(page, CONNECTED, timeout=45_000)
        wait_for_js(page, PLAYING, timeout=20_000)
    a.page.evaluate("window.firstPc = window.meet.pc")

    # Bob reloads mid-call: straight back to the match, and the call is negotiated again.
    b.page.reload()
    expect(b.page.locator("#meet-matched")).to_be_visible()
    expect(b.page.locator("#partner-name")).to_have_text("Ann")
    for page in (a.page, b.page):
        wait_for_js(page, CONNECTED, timeout=45_000)
        wait_for_js(page, PLAYING, timeout=20_000)
    assert a.page.evaluate("window.meet.pc !== window.firstPc")  # Ann restarted her side
    a.page.get_by_label("Message to your match").fill("still there?")
    a.page.get_by_label("Message to your match").press("Enter")
    expect(b.page.locator("#meet-log .msg-body")).to_have_text(["still there?"])

    # A second tab of Bob's takes the room over; the first one lets go.
    tab = b.context.new_page()
    tab.goto(server.url + "/meet/")
    expect(tab.locator("#meet-matched")).to_be_visible()
    expect(b.page.locator("#meet-ended-text")).to_have_text(
        "This chat continues in another tab or window."
    )
    wait_for_js(b.page, "window.meet.pc === null")
    for page in (a.page, tab):
        wait_for_js(page, CONNECTED, timeout=45_000)
        wait_for_js(page, PLAYING, timeout=20_000)
    expect(a.page.locator("#meet-matched")).to_be_visible()
