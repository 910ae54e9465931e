"""The explanation process (fairmoe.worker): same answers as the Predictor in this process, input
errors passed through, a dead child restarted, other weights refused."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from fairmoe.inference import InputError, Predictor
from fairmoe.worker import ProcessPredictor, WorkerError, fingerprint
from tests.fairmoe.checked import checked_checkpoint, colour_photo

NOTE = "glaucoma suspect with cup to disc ratio 0.7"


def _scan(seed: int, size: int = 64) -> np.ndarray:
    return (np.random.default_rng(seed).random((size, size)) * 255).astype(np.uint8)


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def pool(predictor: Predictor):
    p = ProcessPredictor(
        predictor.meta.path, processes=2, threads=1, expected=fingerprint(predictor.model)
    )
    yield p
    p.close()


def test_the_child_explains_as_this_process(pool, predictor):
    scan = _scan(1)
    mine = predictor.explain(scan, NOTE, n_steps=4, model_maps=False)
    theirs = pool.explain(scan, NOTE, n_steps=4, model_maps=False)
    assert _same(theirs, mine)
    assert theirs["attributions"]["experts"] and theirs["note_attributions"]
    assert _same(pool.model_maps(scan, n_steps=4), predictor.model_maps(scan, n_steps=4))


def test_the_child_explains_an_edit_as_this_process(pool, predictor):
    scan = _scan(6)
    edited = np.clip(predictor.scan_pixels(scan).astype(int) + 40, 0, 255).astype(np.uint8)
    kw = {"n_steps": 2, "edited": edited}
    mine = predictor.explain(scan, None, model_maps=False, **kw)
    assert _same(pool.explain(scan, None, model_maps=False, **kw), mine)
    assert _same(pool.model_maps(scan, **kw), predictor.model_maps(scan, **kw))


def test_concurrent_calls_use_both_children(pool, predictor):
    scans = [_scan(10 + i) for i in range(4)]
    want = [predictor.explain(s, None, n_steps=2, model_maps=False) for s in scans]
    got: dict[int, dict] = {}

    def run(i: int) -> None:
        got[i] = pool.explain(scans[i], None, n_steps=2, model_maps=False)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(_same(got[i], want[i]) for i in range(4))
    assert len(set(pool.pids)) == 2


def test_input_errors_come_back_as_input_errors(pool):
    with pytest.raises(InputError, match="not an image"):
        pool.explain(b"this is not an image", None)
    assert pool.explain(_scan(2), None, n_steps=2, model_maps=False)["probability"] >= 0


def test_a_dead_child_is_restarted(predictor):
    p = ProcessPredictor(predictor.meta.path, processes=1)
    try:
        first = p.explain(_scan(3), None, n_steps=2, model_maps=False)
        os.kill(p.pids[0], signal.SIGKILL)
        time.sleep(0.2)
        with pytest.raises(WorkerError, match="restarting"):
            p.explain(_scan(3), None, n_steps=2, model_maps=False)
        assert p.restarts == 1
        again = p.explain(_scan(3), None, n_steps=2, model_maps=False)  # the new child answers
        assert _same(again, first)
    finally:
        p.close()


def test_other_weights_are_refused(predictor):
    model = predictor.clone().model
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    assert fingerprint(model) != fingerprint(predictor.model)
    p = ProcessPredictor(predictor.meta.path, expected=fingerprint(model))
    try:
        with pytest.raises(WorkerError, match="other weights"):
            p.explain(_scan(4), None)
    finally:
        p.close()


def test_a_checkpoint_that_does_not_load_says_why(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    p = ProcessPredictor(bad)
    try:
        with pytest.raises(WorkerError, match="could not load the model"):
            p.explain(_scan(5), None)
    finally:
        p.close()


def test_the_child_refuses_what_the_check_refuses_without_explaining(predictor, tmp_path_factory):
    checked = Predictor(checked_checkpoint(predictor, tmp_path_factory)[0])
    photo = colour_photo()
    mine = checked.explain(photo, NOTE)
    assert mine["assessable"]["assessable"] is False and mine["attributions"] is None
    p = ProcessPredictor(checked.meta.path, expected=fingerprint(checked.model))
    try:
        assert _same(p.explain(photo, NOTE), mine)  # the child loads the check beside the model
        maps = p.model_maps(photo)
        assert maps["whole_model"] is None and maps["assessable"] == mine["assessable"]
    finally:
        p.close()
