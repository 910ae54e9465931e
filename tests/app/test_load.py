"""Load: 32 concurrent gradio_client users x 10 mixed requests against ``python -m app``."""

from __future__ import annotations

import pytest

from benchmarks.loadgen import KINDS, run_load, start_app

pytestmark = pytest.mark.slow

CLIENTS = 32
REQUESTS = 10
# Resident memory may grow by this much under load: Gradio's per-session state and caches, the
# allocator keeping freed pages. A leak per request (overlays, uploads, tensors) would exceed it.
RSS_GROWTH_LIMIT = 300 * 2**20


def test_32_users_x_10_mixed_requests(assets_dir, runtime):
    cases = [(ex.file, ex.note) for ex in runtime.examples]
    cases += [(ex.file.with_suffix(".npz"), "") for ex in runtime.examples]
    runs = list(runtime.runs)
    app = start_app(assets_dir, args=["--threads", "1"])
    try:
        # one round of each kind first, so lazy initialisation is not counted as growth
        warm = run_load(app.url, cases, runs, clients=3, requests=3, seed=99)
        assert not warm.errors, warm.errors
        rss_before = app.rss()
        result = run_load(app.url, cases, runs, clients=CLIENTS, requests=REQUESTS, seed=0)
        rss_after = app.rss()
        peak = app.peak_rss()
    finally:
        app.stop()
    table = "\n".join(
        f"{k:9s} n={n:3d} p50={p50:7.0f} ms p95={p95:7.0f} ms max={mx:7.0f} ms"
        for k, n, p50, p95, mx in result.table()
    )
    print(
        f"\n{table}\nwall {result.wall_s:.1f} s; RSS {rss_before / 2**20:.0f} -> "
        f"{rss_after / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB"
    )
    assert not result.errors, result.errors[:5]
    assert result.n_ok == CLIENTS * REQUESTS
    assert set(result.latencies) == set(KINDS)
    assert not result.inconsistent, result.inconsistent
    assert rss_after - rss_before < RSS_GROWTH_LIMIT
