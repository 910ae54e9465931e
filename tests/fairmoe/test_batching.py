"""Dynamic batching (fairmoe.serving) on the shipped model: concurrent predictions run as one
forward pass and get the answers they get alone."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fairmoe.inference import Predictor
from fairmoe.serving import Batcher, BatchingPredictor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    runs = REPO / "assets" / "runs.json"
    if not runs.is_file():
        pytest.skip("the repo's assets/runs.json does not exist")
    return Predictor(REPO / "assets" / json.loads(runs.read_text())["default"])


def _requests() -> list[tuple[Path, str | None]]:
    """The shipped examples as PNG with their note, as .npz (the note inside), one without."""
    examples = json.loads((REPO / "assets" / "examples" / "examples.json").read_text())
    out: list[tuple[Path, str | None]] = []
    for e in examples[:4]:
        out += [(REPO / "assets" / e["file"], e["note"]), (REPO / "assets" / e["npz"], None)]
    return out + [(REPO / "assets" / examples[-1]["file"], "")]


def _same(a: dict, b: dict) -> None:
    assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)
    assert a["decision"] == b["decision"]
    assert [e["kept"] for e in a["experts"]] == [e["kept"] for e in b["experts"]]
    assert a["dropped_patches"] == b["dropped_patches"]
    np.testing.assert_allclose(a["feature_gates"]["image"], b["feature_gates"]["image"], atol=1e-6)
    assert a["note"]["tokens"] == b["note"]["tokens"]
    assert a["note"]["dropped_tokens"] == b["note"]["dropped_tokens"]
    if a["note"]["similarity_to_scan"] is not None:
        assert a["note"]["similarity_to_scan"] == pytest.approx(
            b["note"]["similarity_to_scan"], abs=1e-5
        )
    assert a["warnings"] == b["warnings"]


def test_a_batch_answers_as_one_scan_alone(shipped: Predictor) -> None:
    reqs = _requests()
    alone = [shipped.predict(path, note) for path, note in reqs]
    together = shipped.predict_batch([p for p, _ in reqs], [n for _, n in reqs])
    assert len(together) == len(reqs)
    for a, b in zip(alone, together, strict=True):
        _same(a, b)
    scored = shipped.score_pixels(np.stack([shipped.scan_pixels(p) for p, _ in reqs]))
    np.testing.assert_allclose(scored["score"], [a["probability"] for a in alone], atol=1e-6)
    np.testing.assert_allclose(
        scored["loads"][:, 0], [a["experts"][0]["load"] for a in alone], atol=1e-6
    )


def test_concurrent_predictions_run_as_one_forward_pass(shipped: Predictor) -> None:
    reqs = _requests()
    bp = BatchingPredictor(shipped, max_batch=16)
    gate, first_running = threading.Event(), threading.Event()
    run = bp.batcher.fn

    def held(items: list) -> list:  # the first batch waits until every request is queued
        first_running.set()
        gate.wait(timeout=30)
        return run(items)

    bp.batcher.fn = held
    try:
        with ThreadPoolExecutor(len(reqs) + 1) as pool:
            lone = pool.submit(bp.predict, *reqs[0])
            assert first_running.wait(timeout=30)
            futures = [pool.submit(bp.predict, p, n) for p, n in reqs]
            while len(bp.batcher._pending) < len(reqs):  # all queued behind the first
                threading.Event().wait(0.01)
            gate.set()
            answers = [f.result(timeout=60) for f in futures]
            lone.result(timeout=60)
    finally:
        bp.close()
    assert bp.batch_sizes == {1: 1, len(reqs): 1}  # the lone one, then all others in one pass
    for (path, note), got in zip(reqs, answers, strict=True):
        _same(shipped.predict(path, note), got)


def test_bad_input_fails_only_its_own_request(shipped: Predictor, tmp_path: Path) -> None:
    from fairmoe.inference import InputError

    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    bp = BatchingPredictor(shipped)
    try:
        with pytest.raises(InputError):
            bp.predict(bad, "")
        path, note = _requests()[0]
        assert bp.predict(path, note)["probability"] == pytest.approx(
            shipped.predict(path, note)["probability"], abs=1e-6
        )
    finally:
        bp.close()


def test_batcher_passes_errors_to_every_caller_and_keeps_serving() -> None:
    calls: list[list[int]] = []

    def fn(items: list[int]) -> list[int]:
        calls.append(items)
        if -1 in items:
            raise ValueError("boom")
        return [i * 2 for i in items]

    b: Batcher[int, int] = Batcher(fn, max_batch=4)
    try:
        with pytest.raises(ValueError, match="boom"):
            b.submit(-1)
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(b.submit, range(8))) == [i * 2 for i in range(8)]
        assert all(len(c) <= 4 for c in calls)
    finally:
        b.close()
    with pytest.raises(RuntimeError, match="closed"):
        b.submit(1)
