"""Many concurrent gradio_client users against a launched ``python -m app``: shared by the load
test (tests/app/test_load.py) and the benchmark (benchmarks/bench_load.py).

Each simulated user owns one ``Client`` (its own session) and sends a fixed, seeded mix of
/predict, /explain and /fairness requests back to back; all users start together. Answers are
checked for consistency: the same scan and note must give the same probability whichever user
asked and whatever else was running, and the same fairness query the same numbers.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KINDS = ("predict", "explain", "fairness")
OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}

# Same scan, same probability: batched predictions may differ from unbatched ones in float
# rounding (a few 1e-8), never more than this.
PROBABILITY_TOL = 1e-6

__all__ = [
    "KINDS",
    "AppProcess",
    "LoadResult",
    "free_port",
    "launched",
    "percentile",
    "run_load",
    "start_app",
]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def launched(rt: Any) -> Iterator[str]:
    """The app over runtime ``rt`` in this process on a free 127.0.0.1 port, ready as
    ``python -m app`` is when it opens its port (explanation processes loaded); yields its URL."""
    from app.readiness import start_serving
    from app.ui import build_demo, launch_kwargs

    start_serving(rt)
    demo = build_demo(rt)
    demo.launch(**launch_kwargs(rt), server_name="127.0.0.1", server_port=free_port(),
                prevent_thread_lock=True, quiet=True)  # fmt: skip
    try:
        yield demo.local_url
    finally:
        demo.close()


@dataclass
class AppProcess:
    """A ``python -m app`` child process on 127.0.0.1."""

    proc: subprocess.Popen
    port: int
    log: Path  # its stdout and stderr
    start_s: float = float("nan")  # from the command to the first answered HTTP request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def pids(self) -> list[int]:
        """The server and its descendants (the explanation processes), Linux."""
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):  # the thread or process has just ended
                    todo += [int(c) for c in task.read_text().split()]
        return out

    @staticmethod
    def _status(pid: int, key: str) -> int:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:  # a child that has just ended
            return 0
        for line in lines:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"{key} not in /proc/{pid}/status")

    def rss(self) -> int:
        """Resident memory now of the server and its child processes, in bytes (Linux)."""
        return sum(self._status(pid, "VmRSS") for pid in self.pids())

    def pss(self) -> int:
        """Proportional resident memory now of the server and its child processes, in bytes
        (Linux): each shared page (torch's libraries, mapped by every process) counted once in
        all, where the sum of RSS counts it in every process."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):  # a child that has just ended
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        return total

    def peak_rss(self) -> int:
        """Sum of each process's largest resident memory so far, in bytes (Linux)."""
        return sum(self._status(pid, "VmHWM") for pid in self.pids())

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its child processes (Linux)."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        return total / os.sysconf("SC_CLK_TCK")

    def settle(self, *, busy: float = 0.05, timeout: float = 120) -> float:
        """Wait until the server and its children use under ``busy`` of a core over a second
        (their background start-up work done: the explanation process, and in revisions that
        had it the CI prefetch); the seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            before = self.cpu_seconds()
            time.sleep(1)
            if self.cpu_seconds() - before < busy:
                break
        return time.monotonic() - t0

    def stop(self, timeout: float = 60, *, keep_log: bool = False) -> int:
        """SIGTERM, then the exit code; the log file goes unless ``keep_log``."""
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if not keep_log:
            self.log.unlink(missing_ok=True)
        return code


def start_app(
    assets: Path,
    *,
    port: int | None = None,
    args: Sequence[str] = (),
    env: dict[str, str | None] | None = None,
    timeout: float = 180,
    repo: Path = REPO,
) -> AppProcess:
    """Start ``python -m app --assets ASSETS`` and wait until it answers.

    ``env`` adds to this process's environment; a value of None removes that variable. ``repo``:
    the checkout whose ``app`` runs (another revision's worktree, with this Python).
    """
    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix="fairmoe-app-log-", suffix=".txt")[1])
    merged = {**os.environ, **OFFLINE_ENV, **(env or {})}
    full_env = {k: v for k, v in merged.items() if v is not None}
    cmd = [sys.executable, "-m", "app", "--assets", str(assets), "--port", str(port), *args]
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=repo, stdout=out, stderr=subprocess.STDOUT, env=full_env)
    app = AppProcess(proc, port, log)
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(app.url + "config", timeout=2).read()
            app.start_s = time.monotonic() - t0
            return app
        except OSError:
            if proc.poll() is not None:
                tail = log.read_text()[-2000:]
                log.unlink()
                raise RuntimeError(
                    f"python -m app exited with {proc.returncode}:\n{tail}"
                ) from None
            if time.monotonic() > deadline:
                app.stop()
                raise RuntimeError(f"python -m app did not answer within {timeout:.0f} s") from None
            time.sleep(0.1)


@dataclass
class LoadResult:
    clients: int
    requests_per_client: int
    wall_s: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # s
    errors: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)

    @classmethod
    def pooled(cls, results: Sequence[LoadResult]) -> LoadResult:
        """Several runs as one: their latencies and errors together, their wall times summed."""
        out = cls(results[0].clients, results[0].requests_per_client, 0.0)
        for r in results:
            out.wall_s += r.wall_s
            for kind, values in r.latencies.items():
                out.latencies[kind] += values
            out.errors += r.errors
            out.inconsistent += r.inconsistent
        return out

    @property
    def n_ok(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def all_latencies(self) -> list[float]:
        return [t for v in self.latencies.values() for t in v]

    def table(self) -> list[tuple[str, int, float, float, float]]:
        """(kind, n, p50 ms, p95 ms, max ms) per kind, then for all requests."""
        rows = []
        for kind, values in [*sorted(self.latencies.items()), ("all", self.all_latencies())]:
            if values:
                rows.append(
                    (
                        kind,
                        len(values),
                        percentile(values, 50) * 1000,
                        percentile(values, 95) * 1000,
                        max(values) * 1000,
                    )
                )
        return rows


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q))


def _plan(
    client: int, requests: int, seed: int, n_cases: int, n_runs: int, mix: Sequence[str] = KINDS
) -> list[tuple]:
    """The user's requests: an even mix of kinds, in a seeded order, over the cases and runs."""
    rng = random.Random(seed * 1000 + client)
    kinds = [mix[(client + i) % len(mix)] for i in range(requests)]
    rng.shuffle(kinds)
    plan = []
    for kind in kinds:
        if kind == "fairness":
            attr = rng.choice(("race", "gender", "ethnicity", "language"))
            plan.append((kind, rng.randrange(n_runs), attr, rng.choice((0.3, 0.5, 0.7))))
        else:
            plan.append((kind, rng.randrange(n_cases)))
    return plan


def run_load(
    url: str,
    cases: Sequence[tuple[Path, str]],
    runs: Sequence[str],
    *,
    clients: int = 32,
    requests: int = 10,
    seed: int = 0,
    mix: Callable[[int], Sequence[str]] | None = None,
    fresh_notes: bool = False,
    ssl_verify: bool | None = None,
) -> LoadResult:
    """``clients`` users x ``requests`` each, all started together; see the module docstring.

    ``mix(user)`` gives the kinds a user's requests are drawn from (default: all of ``KINDS``).
    ``fresh_notes`` makes every note unique, so that no answer comes from a session's cache.
    ``ssl_verify`` (default: only for https) is gradio_client's: it builds a new TLS context, CA
    bundle included, for every HTTP request it makes (upload, join, stream, each download), about
    20-60 ms of the load generator's CPU each, which on a shared 2-core machine is taken from the
    server under test. A plain http:// URL uses no TLS, so there is nothing to verify.
    """
    if ssl_verify is None:
        ssl_verify = url.startswith("https")
    from gradio_client import Client, handle_file

    downloads = Path(tempfile.mkdtemp(prefix="fairmoe-load-"))

    def connect(_: int) -> Any:
        return Client(
            url,
            verbose=False,
            analytics_enabled=False,
            download_files=str(downloads),
            ssl_verify=ssl_verify,
        )

    with ThreadPoolExecutor(clients) as pool:
        users = list(pool.map(connect, range(clients)))
    result = LoadResult(clients, requests, 0.0)
    answers: dict[tuple, list[Any]] = defaultdict(list)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def user(index: int) -> None:
        client = users[index]
        kinds = mix(index) if mix is not None else KINDS
        plan = _plan(index, requests, seed, len(cases), len(runs), kinds)
        start.wait()
        for n, step in enumerate(plan):
            kind = step[0]
            t0 = time.perf_counter()
            try:
                if kind == "fairness":
                    key = (kind, runs[step[1]], step[2], step[3])
                    out = client.predict(*key[1:], api_name="/fairness")
                    answer: Any = out
                else:
                    path, note = cases[step[1]]
                    key = (kind, step[1])
                    if fresh_notes:  # the decision is scan-only: answers stay comparable
                        note = f"{note} [user {index} request {n}]"
                    out = client.predict(handle_file(str(path)), note, api_name=f"/{kind}")
                    answer = (out[0] if kind == "explain" else out)["probability"]
            except Exception as e:  # every failure is counted and reported, none is fatal
                with lock:
                    result.errors.append(f"user {index} {kind}: {type(e).__name__}: {e}")
                continue
            elapsed = time.perf_counter() - t0
            with lock:
                result.latencies[kind].append(elapsed)
                answers[key].append(answer)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    result.wall_s = time.perf_counter() - t0
    for c in users:
        c.close()
    for key, values in answers.items():
        first = values[0]
        same = all(
            (abs(v - first) <= PROBABILITY_TOL if isinstance(first, float) else v == first)
            for v in values
        )
        if not same:
            result.inconsistent.append(f"{key}: {len(set(map(str, values)))} different answers")
    shutil.rmtree(downloads, ignore_errors=True)
    return result
