"""switchboard/servers.py: the process lifecycle the tests and the bench share.

Real uvicorn servers are exercised by every test using the ``servers`` fixture; these use
small Python children to pin down what the fixtures rely on.
"""

import signal
import sys
import time

import psutil
import pytest

from switchboard.servers import SWITCHBOARD_APP, ManagedProcess, ServerProcess


def _child(code: str, tmp_path, **kwargs) -> ManagedProcess:
    return ManagedProcess(
        label="child",
        command=[sys.executable, "-c", code],
        env={"PYTHONUNBUFFERED": "1"},
        log=tmp_path / "logs" / "child.log",
        **kwargs,
    )


def _logged(proc: ManagedProcess, text: str):
    return lambda: text in proc.log.read_text()


def test_a_child_that_exits_early_is_reported_with_its_log(tmp_path):
    proc = _child("print('boom'); raise SystemExit(3)", tmp_path)
    proc.spawn()
    with pytest.raises(RuntimeError, match=r"child exited; see .*child\.log"):
        proc.wait_until(lambda: False)
    assert "boom" in proc.log.read_text()


def test_a_child_that_never_gets_ready_times_out(tmp_path):
    proc = _child("import time; time.sleep(30)", tmp_path, start_timeout=0.5)
    proc.spawn()
    try:
        with pytest.raises(RuntimeError, match="child did not start"):
            proc.wait_until(lambda: False)
    finally:
        proc.stop()
    assert not proc.running()


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready'); time.sleep(30)"
    )
    proc = _child(code, tmp_path, stop_timeout=0.5)
    proc.spawn()
    proc.wait_until(_logged(proc, "ready"))
    proc.stop()
    assert proc.proc.returncode == -signal.SIGKILL


def test_kill_with_own_group_takes_the_children_too(tmp_path):
    code = (
        "import subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print('child', c.pid); time.sleep(30)"
    )
    proc = _child(code, tmp_path, own_group=True)
    proc.spawn()
    proc.wait_until(_logged(proc, "child "))
    grandchild = int(proc.log.read_text().split()[-1])
    proc.kill()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the grandchild outlived kill()")


def test_stop_and_kill_before_spawn_do_nothing(tmp_path):
    proc = _child("pass", tmp_path)
    proc.stop()
    proc.kill()
    assert not proc.running()


def test_a_server_runs_the_app_on_its_own_port_and_logs_by_name(tmp_path):
    named = ServerProcess(env={}, log_dir=tmp_path, args=["--lifespan", "off"], name="a")
    unnamed = ServerProcess(env={}, log_dir=tmp_path, args=[])
    assert named.command[-6:] == ["--host", "127.0.0.1", "--port", str(named.port),
                                  "--lifespan", "off"]  # fmt: skip
    assert SWITCHBOARD_APP in named.command
    assert named.log == tmp_path / f"server-a-{named.port}.log"
    assert unnamed.log == tmp_path / f"server-{unnamed.port}.log"
    assert named.ws_url == f"ws://127.0.0.1:{named.port}/ws"
    assert not named.healthy()  # nothing listens there yet
