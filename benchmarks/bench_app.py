"""Latency of the app on this machine: predict, explain and a fairness update, called directly
(server time) and through gradio_client, plus the cold start of ``python -m app``.

python benchmarks/bench_app.py [--assets DIR] [--repeats N] [--cold-starts K] [--ssl-verify]

Uses the repo's assets/ when they exist; otherwise the app tests' cached assets (built on demand,
about a minute). Prints medians in milliseconds (cold start in seconds).
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.loadgen import launched, start_app  # noqa: E402


def _assets(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    if (REPO / "assets" / "runs.json").is_file():
        return REPO / "assets"
    cached = sorted(Path(tempfile.gettempdir()).glob("fairmoe-app-assets-*/assets/runs.json"))
    if cached:
        return max(cached, key=lambda p: p.stat().st_mtime).parent
    print("no assets/runs.json: building the app tests' small assets (about a minute) ...")
    from tests.app.conftest import build_assets

    return build_assets(Path(tempfile.mkdtemp(prefix="fairmoe-bench-assets-")))


def _median_ms(fn: Callable[[int], object], repeats: int, warm: int = 1) -> float:
    for i in range(warm):
        fn(-1 - i)
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def _cold_start(assets: Path) -> float:
    """Seconds from `python -m app` to the first HTTP answer."""
    t = time.perf_counter()
    app = start_app(assets)
    elapsed = time.perf_counter() - t
    app.stop()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assets", type=Path)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--cold-starts", type=int, default=2)
    p.add_argument("--threads", type=int, help="torch threads (default: as python -m app)")
    p.add_argument("--ssl-verify", action="store_true",
                   help="gradio_client's default: a new TLS context per HTTP request, even over "
                   "http:// (20-60 ms of client CPU each; see benchmarks/loadgen.py)")  # fmt: skip
    args = p.parse_args(argv)
    assets = _assets(args.assets)
    import torch

    from app.config import default_threads

    torch.set_num_threads(args.threads or default_threads())

    from gradio_client import Client, handle_file

    from app import callbacks as cb
    from app.runtime import load_runtime

    t = time.perf_counter()
    rt = load_runtime(assets)
    load_s = time.perf_counter() - t
    ex = rt.examples[0] if rt.examples else None
    scan = str(ex.file) if ex else None
    note = ex.note if ex else ""
    if scan is None:
        print("no examples in assets/examples/examples.json: cannot time predict/explain")
        return 1
    run = rt.model_scores or next(iter(rt.runs.values())).scores
    attr = rt.predictor.attribute
    n = args.repeats
    rows: list[tuple[str, float, float | None]] = []

    def thr(i: int) -> float:
        return 0.3 + (i % 40) * 0.01  # a new threshold each time: no report cache hits

    server = {
        "predict": _median_ms(lambda i: cb.predict(rt, scan, note), n),
        "explain": _median_ms(lambda i: cb.explain(rt, scan, note), max(5, n // 3)),
        "experts view (figures)": None,
        "fairness update (slider)": _median_ms(
            lambda i: cb.fairness_update(run, attr, "single", thr(i)), n * 4
        ),
        "fairness update (per group)": _median_ms(
            lambda i: cb.fairness_update(run, attr, "per group", 0.5, thr(i), 0.5, thr(i + 7)),
            n * 4,
        ),
    }
    _, _, state = cb.explain(rt, scan, note)
    shown = cb.expert_choices(rt)[:5]
    server["experts view (figures)"] = _median_ms(lambda i: cb.experts_view(state, shown), n)

    with launched(rt) as url:
        client = Client(url, verbose=False, ssl_verify=args.ssl_verify)
        via = {
            "predict": _median_ms(
                lambda i: client.predict(handle_file(scan), note, api_name="/predict"), n
            ),
            "explain": _median_ms(
                lambda i: client.predict(handle_file(scan), note, api_name="/explain"),
                max(5, n // 3),
            ),
            "fairness update (slider)": _median_ms(
                lambda i: client.predict(run.name, attr, thr(i), api_name="/fairness"), n
            ),
        }
    for k, v in server.items():
        rows.append((k, v, via.get(k)))
    colds = [_cold_start(assets) for _ in range(args.cold_starts)]

    load = os.getloadavg()[0]
    print(
        f"\nFair-MoE Studio app latency ({rt.model_name}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, load average {load:.1f}; medians)"
    )
    print(f"assets: {assets}")
    print(f"{'call':30} {'server (ms)':>12} {'client (ms)':>12}")
    for name, srv, cli in rows:
        print(f"{name:30} {srv:12.1f} {cli if cli is not None else float('nan'):12.1f}")
    print(f"runtime load (model + scores, warm-up): {load_s:.1f} s")
    print(
        f"cold start `python -m app` to HTTP ready: median {statistics.median(colds):.1f} s "
        f"({', '.join(f'{c:.1f}' for c in colds)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
