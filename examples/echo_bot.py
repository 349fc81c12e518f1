r"""An echo bot on the Switchboard Python client (docs/client.md, "The Python client").

It answers every message someone else writes in its conversations with ``echo: <body>``,
reconnects on its own when the server goes away, and resumes where it was: its cursors
(the last seq it saw per conversation) and its unsent replies (the outbox) are kept in a
state directory, so even a restart of the bot neither misses a message nor answers one twice.

    PYTHONPATH=. SWITCHBOARD_URL=http://127.0.0.1:8000 SWITCHBOARD_TOKEN=<key> \
        python examples/echo_bot.py
    PYTHONPATH=. SWITCHBOARD_URL=http://127.0.0.1:8000 \
    SWITCHBOARD_USERNAME=bot SWITCHBOARD_PASSWORD=... python examples/echo_bot.py

Environment: ``SWITCHBOARD_URL`` (the server's base URL), ``SWITCHBOARD_TOKEN`` or
``SWITCHBOARD_USERNAME`` + ``SWITCHBOARD_PASSWORD`` (a token is then asked for over REST),
``ECHO_BOT_STATE`` (a directory; default: none, the bot then starts from the conversations'
newest messages), ``ECHO_BOT_ACCEPT=1`` to accept the requests it gets.
"""

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from switchboard_client import Client, Opened, token_login, ws_url

log = logging.getLogger("echo_bot")


class EchoBot:
    def __init__(self, client: Client, state_dir: Path | None, accept: bool) -> None:
        self.client = client
        self.cursors_file = state_dir / "cursors.json" if state_dir else None
        self.accept = accept
        client.on("message.new", self.on_message)
        client.on("conversation.request", self.on_request)
        client.on_open(self.on_open)
        client.on_state(lambda state, previous: log.info("state %s -> %s", previous, state))
        if self.cursors_file is not None and self.cursors_file.exists():
            for cid, cursor in json.loads(self.cursors_file.read_text()).items():
                client.set_cursor(int(cid), cursor["seq"], cursor["change_seq"])

    def on_message(self, message: dict[str, Any], frame: dict[str, Any]) -> None:
        if message["sender_id"] != self.client.user_id and not message["deleted"]:
            # The reply's client_id is derived from the message: a bot restarted before its
            # reply was stored sends the same one again, and the server stores it once.
            self.client.send(
                message["conversation_id"],
                f"echo: {message['body']}"[:4000],
                client_id=f"echo-{message['id']}",
            )
        self.save()

    async def on_request(self, data: dict[str, Any], frame: dict[str, Any]) -> None:
        if self.accept:
            await self.client.accept(data["conversation_id"])

    async def on_open(self, opened: Opened) -> None:
        log.info(
            "open: %d conversations, reconnect=%s", len(self.client.cursors()), opened.reconnect
        )
        if self.accept:
            for request in opened.requests:
                await self.client.accept(request["id"])
        self.save()

    def save(self) -> None:
        if self.cursors_file is not None:
            tmp = self.cursors_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.client.cursors()))
            os.replace(tmp, self.cursors_file)


async def main() -> None:
    base = os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:8000").rstrip("/")
    token = os.environ.get("SWITCHBOARD_TOKEN")
    if not token:
        token = await token_login(
            base, os.environ["SWITCHBOARD_USERNAME"], os.environ["SWITCHBOARD_PASSWORD"]
        )
    state = os.environ.get("ECHO_BOT_STATE")
    state_dir = Path(state) if state else None
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
    client = Client(
        ws_url(base),
        token=token,
        outbox_path=state_dir / "outbox.json" if state_dir else None,
    )
    EchoBot(client, state_dir, accept=os.environ.get("ECHO_BOT_ACCEPT") == "1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client.start()  # connects, and reconnects with back-off for as long as it runs
    await stop.wait()
    await client.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    asyncio.run(main())
