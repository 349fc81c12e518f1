"""examples/echo_bot.py as a subprocess against a real server process: it echoes, comes
back after the server restarts, and after its own restart answers what it missed, once."""

import asyncio
import os
import subprocess
import sys
import time

import pytest
from channels.db import database_sync_to_async

from conversations.services import conversation_direct_get_or_create
from switchboard_client import Client, Options
from tests.conftest import ARTIFACTS, ROOT, accept_all, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "correct-horse-battery-9"
FAST = Options(heartbeat_interval=0.5, heartbeat_timeout=1.0, backoff_base=0.1, backoff_max=0.5)


def _bot_and_bob(make_user):
    bot, bob = make_user(password=PASSWORD), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=bob.pk, other_user_id=bot.pk)
    accept_all(conv)
    return bot.username, token_for(bob), conv.pk


def _log(server):
    return ARTIFACTS / f"echo-bot-{server.port}.log"


async def _opened(server, times: int) -> None:
    """Wait for the bot's ``times``-th "open:" line (its sync answered: it hears from now)."""
    deadline = time.monotonic() + 60
    while _log(server).read_text().count(" open: ") < times:
        assert time.monotonic() < deadline, _log(server).read_text()[-2000:]
        await asyncio.sleep(0.05)


def _bot(server, username, state_dir) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SWITCHBOARD_URL": server.url,
        "SWITCHBOARD_USERNAME": username,
        "SWITCHBOARD_PASSWORD": PASSWORD,
        "ECHO_BOT_STATE": str(state_dir),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(_log(server), "ab")  # noqa: SIM115 - the child's
    return subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "echo_bot.py")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def _echoes(events, count: int) -> list[str]:
    got = []
    while len(got) < count:
        event = await events.get(timeout=30)
        if event.data["body"].startswith("echo: "):
            got.append(event.data["body"])
    return got


async def test_the_echo_bot_answers_reconnects_and_resumes(server, make_user, tmp_path):
    username, bob_token, cid = await database_sync_to_async(_bot_and_bob)(make_user)
    _log(server).unlink(missing_ok=True)
    bot = _bot(server, username, tmp_path)
    try:
        async with Client(server.ws_url, token=bob_token, options=FAST) as bob:
            with bob.subscribe("message.new") as events:
                # A bot without state starts from the newest message when it first syncs.
                await _opened(server, 1)
                await asyncio.wait_for(bob.send(cid, "one").done, 20)
                assert await _echoes(events, 1) == ["echo: one"]

                server.kill()
                server.start()
                await bob.wait_open(timeout=30)
                await asyncio.wait_for(bob.send(cid, "two").done, 20)
                assert await _echoes(events, 1) == ["echo: two"]

                bot.terminate()
                assert bot.wait(20) == 0
                await asyncio.wait_for(bob.send(cid, "while away").done, 20)
                bot = _bot(server, username, tmp_path)
                assert await _echoes(events, 1) == ["echo: while away"]
                await asyncio.wait_for(bob.send(cid, "three").done, 20)
                assert await _echoes(events, 1) == ["echo: three"]
                await asyncio.sleep(0.3)  # a second echo of anything would arrive here
                late = []
                while True:
                    try:
                        late.append((await events.get(timeout=0.5)).data["body"])
                    except TimeoutError:
                        break
                assert late == []
    finally:
        bot.terminate()
        bot.wait(20)
