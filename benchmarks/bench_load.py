"""Load benchmark: N concurrent gradio_client users x M mixed requests (predict, explain,
fairness) against ``python -m app`` on 127.0.0.1, against a one-user baseline in the same run.

python benchmarks/bench_load.py [--assets DIR] [--clients 32] [--requests 10] [--rounds 2]

Prints p50/p95/max latency per kind, throughput, errors, and the server's resident memory before,
after each round and at its peak. Uses the repo's assets/ (the shipped model) by default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_app import _assets  # noqa: E402
from benchmarks.loadgen import LoadResult, run_load, start_app  # noqa: E402


def _print(title: str, r: LoadResult) -> None:
    print(f"\n{title}: {r.clients} users x {r.requests_per_client} requests in {r.wall_s:.1f} s")
    print(f"  {r.n_ok / r.wall_s:.1f} requests/s; errors {len(r.errors)}; ", end="")
    print(f"inconsistent answers {len(r.inconsistent)}")
    for kind, n, p50, p95, mx in r.table():
        print(f"  {kind:9s} n={n:4d}  p50 {p50:8.0f} ms  p95 {p95:8.0f} ms  max {mx:8.0f} ms")
    for e in r.errors[:5]:
        print("  error:", e)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assets", type=Path)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=10, help="per user")
    p.add_argument("--rounds", type=int, default=2, help="load rounds (memory must level off)")
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the server, e.g. MALLOC_ARENA_MAX=2")  # fmt: skip
    args = p.parse_args(argv)
    assets = _assets(args.assets)
    from app.runtime import load_runtime

    rt = load_runtime(assets, warm_up=False)
    cases = [(ex.file, ex.note) for ex in rt.examples]
    runs = list(rt.runs)
    del rt
    app = start_app(assets, env=dict(kv.split("=", 1) for kv in args.server_env))
    mib = 2**20
    try:
        print(f"assets {assets}; server pid {app.proc.pid}; RSS at start {app.rss() / mib:.0f} MiB")
        base = run_load(app.url, cases, runs, clients=1, requests=30, seed=1)
        _print("baseline (one user, sequential)", base)
        rss = [app.rss()]
        results = []
        for i in range(args.rounds):
            r = run_load(app.url, cases, runs, clients=args.clients, requests=args.requests, seed=i)
            rss.append(app.rss())
            results.append(r)
            _print(f"round {i + 1}", r)
        print("\nRSS (MiB): after baseline " + " -> ".join(f"{x / mib:.0f}" for x in rss))
        print(f"peak RSS {app.peak_rss() / mib:.0f} MiB")
        base_p50 = {k: p50 for k, _, p50, _, _ in base.table()}
        print("p50 under load / one-user p50:")
        for k, _, p50, _, _ in results[-1].table():
            if k in base_p50:
                print(f"  {k:9s} {p50 / base_p50[k]:6.1f}x")
        failed = any(r.errors or r.inconsistent for r in [base, *results])
    finally:
        app.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
