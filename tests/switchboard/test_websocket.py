"""switchboard/websocket.py: a frame the server cannot parse is answered with a close code;
frames are handed to the gateway as they are read, with back-pressure.

Over a raw TCP socket to a server started with the Procfile's own uvicorn options, since no
WebSocket client library will send a text frame that is not UTF-8.
"""

import asyncio
import base64
import json
import os
import struct

import pytest
from channels.db import database_sync_to_async

from bench.common import _procfile_web_args
from switchboard.servers import ServerProcess
from tests.conftest import ARTIFACTS, SERVER_ARGS, SERVER_START_TIMEOUT_SECONDS, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455, 5.2), payloads under 126 bytes."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await reader.readexactly(8))[0]
    return head[0] & 0x0F, await reader.readexactly(size)


async def _open(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw WebSocket to the gateway, past its ``hello``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Token {token}\r\n\r\n"
        ).encode()
    )
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    opcode, hello = await _read_frame(reader)
    assert opcode == 0x1 and b'"hello"' in hello
    return reader, writer


async def _close_code_after(port: int, token: str, frame: bytes) -> int | None:
    """Open a socket, read hello, send ``frame``; return the server's close code (None: none)."""
    reader, writer = await _open(port, token)
    writer.write(frame)
    try:
        async with asyncio.timeout(5):
            while True:
                opcode, payload = await _read_frame(reader)
                if opcode == 0x8:
                    return struct.unpack("!H", payload[:2])[0]
    except asyncio.IncompleteReadError:  # TCP closed without a close frame
        return None
    finally:
        writer.close()


@pytest.fixture
def procfile_server(server_env):
    server = ServerProcess(
        env=server_env,
        log_dir=ARTIFACTS,
        args=_procfile_web_args(),
        start_timeout=SERVER_START_TIMEOUT_SECONDS,
    )
    server.start()
    yield server
    server.stop()


async def test_a_text_frame_that_is_not_utf8_closes_with_1007(procfile_server, make_user):
    user = await database_sync_to_async(make_user)()
    token = await database_sync_to_async(token_for)(user)
    port = procfile_server.port
    assert await _close_code_after(port, token, _frame(0x1, b'{"a":"\xff\xfe"}')) == 1007
    # A frame with reserved bits set is a protocol error: 1002, not a bare TCP close.
    assert await _close_code_after(port, token, b"\xf1" + _frame(0x1, b"{}")[1:]) == 1002
    # A real close from the client is still answered as before (echoed).
    assert await _close_code_after(port, token, _frame(0x8, struct.pack("!H", 1000))) == 1000


async def test_frames_are_each_answered_in_order_in_a_burst_and_one_at_a_time(
    procfile_server, make_user
):
    """The protocol hands frames to the gateway's inbox itself and stops reading after each
    (``receive_into``) until the inbox has room: reading must start again every time, or a
    frame sent after the first would never be read."""
    user = await database_sync_to_async(make_user)()
    token = await database_sync_to_async(token_for)(user)
    reader, writer = await _open(procfile_server.port, token)

    async def replies(n: int) -> list[str]:
        refs = []
        async with asyncio.timeout(10):
            while len(refs) < n:
                opcode, payload = await _read_frame(reader)
                assert opcode == 0x1
                refs.append(json.loads(payload)["ref"])
        return refs

    def ping(i: int) -> bytes:
        return _frame(0x1, b'{"type":"ping","ref":"p%d"}' % i)

    try:
        for i in range(5):  # one at a time: each read after the previous one's pause
            writer.write(ping(i))
            assert await replies(1) == [f"p{i}"]
        burst = 40  # within the frame rate's burst (LIMITS["WS_RATE_BURST"], 60)
        writer.write(b"".join(ping(i) for i in range(5, 5 + burst)))
        assert await replies(burst) == [f"p{i}" for i in range(5, 5 + burst)]
    finally:
        writer.close()


def test_the_test_servers_and_the_procfile_use_the_same_protocol():
    procfile = _procfile_web_args()
    ws = procfile[procfile.index("--ws") + 1]
    assert ws == "switchboard.websocket:WSProtocol"
    assert SERVER_ARGS[SERVER_ARGS.index("--ws") + 1] == ws
