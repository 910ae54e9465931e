"""Load benchmark: N concurrent gradio_client users x M mixed requests (predict, explain,
fairness) against ``python -m app`` on 127.0.0.1; with ``--baseline-rev REV``, an earlier git
revision's app and this working tree's measured in the SAME run, their rounds interleaved, so
that their ratio holds on a busy machine.

python benchmarks/bench_load.py [--assets DIR] [--clients 32] [--requests 10] [--rounds 2]
                                [--baseline-rev REV] [--baseline-assets {same,own}]
                                [--min-ratio 0.9] [--fresh-notes] [--cold] [--cold-runs 2]

``--baseline-rev REV`` checks REV out into a temporary ``git worktree`` (removed afterwards, also
on an error) and starts that revision's ``python -m app`` from it, with this Python and the same
assets (so both serve the same model; a revision that cannot read them fails at start, with its
log); ``--baseline-assets own`` serves that revision's own ``assets/`` instead (its shipped
model and runs: a release that cannot read today's assets is measured as it shipped; both get
the same requests, on this tree's example scans, and the fairness queries ask each server for its
own runs). Prints, per server, a one-user baseline, p50/p95/max latency per kind per round,
throughput, errors and the server's resident memory; then the comparison and the issue's goals.
Both servers are first left to settle (their explanation process loaded: under 5% of a core
over a second), so that no one measures the other's start-up. ``--fresh-notes`` makes every note
unique, so that no explanation comes from a session's cache.
``--cold`` first measures cold bursts: ``--clients`` users with ``COLD_REQUESTS`` mixed requests
each start the moment the server answers its first HTTP request (the time from the command to
that answer is its cold start), before it settles; each server alone on the machine, started
afresh for each of ``--cold-runs`` bursts, the servers alternating; then the settled rounds as
above on servers started again.
``--ssl-verify`` measures with gradio_client's default of a new TLS context per HTTP request (see
``benchmarks.loadgen.run_load``), as the figures before this layout were.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_app import _assets  # noqa: E402
from benchmarks.loadgen import AppProcess, LoadResult, run_load, start_app  # noqa: E402

MIB = 2**20
GOALS = {"predict": 1.0, "explain": 5.0, "fairness": 0.3}  # p95 under load, seconds
CURRENT = "current"  # the working tree's label
# Goal against a baseline revision: no throughput regression beyond the spread of interleaved
# rounds on a busy 2-core machine.
MIN_RATIO = 0.9
COLD_REQUESTS = 6  # per user in the cold burst (issue "Ready for a crowd")


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"error: git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A detached checkout of ``rev`` in a temporary folder, removed on the way out."""
    tmp = Path(tempfile.mkdtemp(prefix="fairmoe-bench-rev-"))
    path = tmp / "tree"
    try:
        _git("worktree", "add", "--detach", str(path), rev)
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO,
                       capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True)


def _print(title: str, r: LoadResult) -> None:
    print(f"\n{title}: {r.clients} users x {r.requests_per_client} requests in {r.wall_s:.1f} s")
    print(f"  {r.n_ok / r.wall_s:.1f} requests/s; errors {len(r.errors)}; ", end="")
    print(f"inconsistent answers {len(r.inconsistent)}")
    for kind, n, p50, p95, mx in r.table():
        print(f"  {kind:9s} n={n:4d}  p50 {p50:8.0f} ms  p95 {p95:8.0f} ms  max {mx:8.0f} ms")
    for e in r.errors[:5]:
        print("  error:", e)


def _side_by_side(title: str, modes: list[str], results: dict) -> tuple[dict, dict]:
    """Print p50 / p95 per kind and the throughput of each mode's result; return both."""
    rows = {m: {k: (p50, p95) for k, _, p50, p95, _ in results[m].table()} for m in modes}
    print(f"\n{title + ', p50 / p95 (ms):':28s}" + "  ".join(f"{m:>22s}" for m in modes))
    for kind in ("predict", "explain", "fairness", "all"):
        cells = [f"{rows[m][kind][0]:9.0f} / {rows[m][kind][1]:8.0f}" for m in modes]
        print(f"  {kind:26s} " + "  ".join(f"{c:>22s}" for c in cells))
    tput = {m: results[m].n_ok / results[m].wall_s for m in modes}
    print("  requests/s                 " + "  ".join(f"{tput[m]:22.1f}" for m in modes))
    return rows, tput


def _compare(
    modes: list[str], base: dict, last: dict, rss: dict, min_ratio: float = MIN_RATIO
) -> bool:
    """Print the side-by-side table and the goals of the last round; True if all are met."""
    rows, tput = _side_by_side("last round", modes, last)
    growth = {m: (rss[m][-1] - rss[m][0]) / MIB for m in modes}
    print("  RSS growth (MiB)           " + "  ".join(f"{growth[m]:22.0f}" for m in modes))
    new = modes[-1]
    one_user = {k: p50 for k, _, p50, _, _ in base[new].table()}
    checks = [
        (f"{k} p95 < {g * 1000:.0f} ms", rows[new][k][1] < g * 1000) for k, g in GOALS.items()
    ]
    if len(modes) > 1:
        ratio = tput[new] / tput[modes[0]]
        checks.append(
            (f"throughput >= {min_ratio:g}x {modes[0]} ({ratio:.2f}x)", ratio >= min_ratio)
        )
    checks += [
        ("0 errors, 0 inconsistent", not (last[new].errors or last[new].inconsistent)),
        (f"RSS growth < 100 MiB ({growth[new]:.0f})", growth[new] < 100),
        (f"one-user predict < 100 ms ({one_user['predict']:.0f})", one_user["predict"] < 100),
    ]
    print(f"\ngoals ({new}):")
    for text, ok in checks:
        print(f"  [{'x' if ok else ' '}] {text}")
    return all(ok for _, ok in checks)


COLD_GOALS = {"predict": 1.0, "explain": 5.0, "fairness": 0.3}  # p95 in the cold burst, seconds


def _compare_cold(modes: list[str], cold: dict, start_s: dict, peak: dict) -> bool:
    """The cold bursts side by side and their goals; True if all are met."""
    rows, tput = _side_by_side("cold burst", modes, cold)
    print("  cold start (s)             " + "  ".join(f"{start_s[m]:22.1f}" for m in modes))
    print("  peak RSS (MiB)             " + "  ".join(f"{peak[m] / MIB:22.0f}" for m in modes))
    new = modes[-1]
    checks = [(f"cold {k} p95 < {g * 1000:.0f} ms", rows[new][k][1] < g * 1000)
              for k, g in COLD_GOALS.items()]  # fmt: skip
    checks += [
        ("cold: 0 errors", not (cold[new].errors or cold[new].inconsistent)),
        (f"cold start < 10 s ({start_s[new]:.1f})", start_s[new] < 10),
        (
            f"peak RSS, server + children, <= 2 GiB ({peak[new] / MIB:.0f} MiB)",
            peak[new] <= 2 * 1024 * MIB,
        ),
    ]
    if len(modes) > 1:
        ratio = tput[new] / tput[modes[0]]
        checks.append((f"cold throughput >= 2x {modes[0]} ({ratio:.2f}x)", ratio >= 2))
    print(f"\ncold goals ({new}):")
    for text, ok in checks:
        print(f"  [{'x' if ok else ' '}] {text}")
    return all(ok for _, ok in checks)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assets", type=Path)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=10, help="per user")
    p.add_argument("--rounds", type=int, default=2, help="load rounds per server (interleaved)")
    p.add_argument("--baseline-rev", metavar="REV", help="also measure this git revision's app")
    p.add_argument("--baseline-assets", choices=("same", "own"), default="same",
                   help="the baseline serves --assets (same) or its revision's assets/ (own)")  # fmt: skip
    p.add_argument("--min-ratio", type=float, default=MIN_RATIO,
                   help="goal: throughput at least this times the baseline revision's")  # fmt: skip
    p.add_argument("--fresh-notes", action="store_true", help="no explanation cache hits")
    p.add_argument(
        "--cold", action="store_true", help="first a burst the moment each server answers"
    )
    p.add_argument("--cold-runs", type=int, default=2,
                   help="cold bursts per server (with --cold), the servers alternating")  # fmt: skip
    p.add_argument("--ssl-verify", action="store_true",
                   help="gradio_client's default TLS set-up per request even over http (costly)")  # fmt: skip
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the servers, e.g. MALLOC_ARENA_MAX=2")  # fmt: skip
    args = p.parse_args(argv)
    assets = _assets(args.assets)
    from app.runtime import load_runtime

    rt = load_runtime(assets, warm_up=False)
    cases = [(ex.file, ex.note) for ex in rt.examples]
    del rt
    env = dict(kv.split("=", 1) for kv in args.server_env)
    with contextlib.ExitStack() as stack:
        repos = {CURRENT: REPO}
        served = {CURRENT: assets.resolve()}
        if args.baseline_rev:
            label = f"rev {args.baseline_rev}"
            repos = {label: stack.enter_context(worktree(args.baseline_rev)), **repos}
            own = args.baseline_assets == "own"
            served[label] = repos[label] / "assets" if own else assets.resolve()
            print(f"{label}: {_git('rev-parse', '--short', args.baseline_rev)} in {repos[label]}, "
                  f"serving {served[label]}")  # fmt: skip
        return _measure(args, served, env, repos, cases)


def _run_names(assets: Path) -> list[str]:
    """The run names of an assets folder's runs.json (any revision's: names only)."""
    return [r["name"] for r in json.loads((assets / "runs.json").read_text())["runs"]]


def _cold_bursts(
    args: argparse.Namespace,
    served: dict[str, Path],
    env: dict[str, str],
    repos: dict[str, Path],
    cases: list,
    runs: dict[str, list[str]],
) -> tuple[dict[str, LoadResult], dict[str, float], dict[str, int]]:
    """``--cold-runs`` times per server, the servers alternating: start it, burst it the moment
    it answers, stop it, so that no other server's start-up or idle work shares the cores. Per
    server: the bursts pooled (latencies together, throughput over their summed wall time), the
    median cold start and the largest peak RSS."""
    bursts: dict[str, list[LoadResult]] = {m: [] for m in repos}
    starts: dict[str, list[float]] = {m: [] for m in repos}
    peaks: dict[str, list[int]] = {m: [] for m in repos}
    for k in range(args.cold_runs):
        for m in repos:
            app = start_app(served[m], env=env, repo=repos[m])
            try:
                r = run_load(app.url, cases, runs[m], clients=args.clients,
                             requests=COLD_REQUESTS, seed=99 + k, fresh_notes=args.fresh_notes,
                             ssl_verify=args.ssl_verify)  # fmt: skip
                peaks[m].append(app.peak_rss())
                pss = app.pss()
            finally:
                app.stop()
            bursts[m].append(r)
            starts[m].append(app.start_s)
            _print(f"{m} cold burst {k + 1} (cold start {app.start_s:.1f} s)", r)
            print(f"  server + children peak RSS {peaks[m][-1] / MIB:.0f} MiB (sum over the "
                  f"processes); PSS after the burst {pss / MIB:.0f} MiB")  # fmt: skip
    pooled = {m: LoadResult.pooled(rs) for m, rs in bursts.items()}
    return (
        pooled,
        {m: statistics.median(v) for m, v in starts.items()},
        {m: max(v) for m, v in peaks.items()},
    )


def _measure(
    args: argparse.Namespace,
    served: dict[str, Path],
    env: dict[str, str],
    repos: dict[str, Path],
    cases: list,
) -> int:
    """Start one server per checkout, load them all in interleaved rounds, print the report."""
    modes = list(repos)
    runs = {m: _run_names(served[m]) for m in modes}
    apps: dict[str, AppProcess] = {}
    failed = True
    cold: dict[str, LoadResult] = {}
    peak: dict[str, int] = {}
    start_s: dict[str, float] = {}
    if args.cold:
        cold, start_s, peak = _cold_bursts(args, served, env, repos, cases, runs)
    try:
        for m in modes:
            apps[m] = start_app(served[m], env=env, repo=repos[m])
            print(f"{m}: server pid {apps[m].proc.pid}; answered after {apps[m].start_s:.1f} s; "
                  f"RSS at start {apps[m].rss() / MIB:.0f} MiB")  # fmt: skip
        for m in modes:  # measure servers that have finished starting, all of them
            print(f"{m}: settled after {apps[m].settle():.0f} s")
        base, rss, last = {}, {m: [] for m in modes}, {}
        for m in modes:
            base[m] = run_load(apps[m].url, cases, runs[m], clients=1, requests=30, seed=1,
                               ssl_verify=args.ssl_verify)  # fmt: skip
            _print(f"{m} baseline (one user, sequential)", base[m])
            rss[m].append(apps[m].rss())
        for i in range(args.rounds):
            for m in modes:  # interleaved: both servers see the same machine
                r = run_load(apps[m].url, cases, runs[m], clients=args.clients,
                             requests=args.requests, seed=i, fresh_notes=args.fresh_notes,
                             ssl_verify=args.ssl_verify)  # fmt: skip
                rss[m].append(apps[m].rss())
                last[m] = r
                _print(f"{m} round {i + 1}", r)
        for m in modes:
            trail = " -> ".join(f"{x / MIB:.0f}" for x in rss[m])
            print(f"{m} RSS (MiB) after baseline, rounds: {trail}; peak "
                  f"{apps[m].peak_rss() / MIB:.0f}; PSS now {apps[m].pss() / MIB:.0f}")  # fmt: skip
        failed = not _compare(modes, base, last, rss, args.min_ratio)
        if cold:
            failed |= not _compare_cold(modes, cold, start_s, peak)
    finally:
        for app in apps.values():
            app.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
