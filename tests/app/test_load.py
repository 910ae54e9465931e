"""Load: 32 concurrent gradio_client users x 10 mixed requests against ``python -m app``."""

from __future__ import annotations

import pytest

from benchmarks.loadgen import KINDS, run_load, start_app

CLIENTS = 32
REQUESTS = 10
# Resident memory may grow by this much under load (measured: 63 MiB over three rounds with the
# shipped model). A leak per request (overlays, uploads, tensors, session state) would exceed it.
RSS_GROWTH_LIMIT = 200 * 2**20


@pytest.mark.slow
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


def test_malloc_arenas_capped_unless_the_user_chose(monkeypatch):
    from app.__main__ import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # glibc already applied the user's value
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas() in (True, False)  # False off glibc only
    import platform

    if platform.libc_ver()[0] == "glibc":
        assert limit_malloc_arenas() is True
