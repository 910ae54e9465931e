"""One optimiser step for training and ``measure_gradients``: the same update, the same gradients."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fairmoe import losses
from fairmoe.data.synthetic import generate
from fairmoe.training import TrainConfig, measure_gradients, train
from tests.fairmoe.training.determinism import deterministic_torch

pytestmark = pytest.mark.slow

STEPS_PER_EPOCH = 3  # limit 24 / batch 8: training's second epoch starts after 3 updates


@pytest.fixture(autouse=True)
def _deterministic():
    with deterministic_torch():
        yield


def test_measured_gradients_are_trainings_after_three_steps(tmp_path: Path) -> None:
    data = generate(tmp_path / "d", n=60, seed=0, workers=1)
    cfg = TrainConfig(
        method="fairmoe", epochs=2, batch_size=8, limit=8 * STEPS_PER_EPOCH, lr=2e-3,
        text_source="label", loss=losses.LossConfig(group_batch_size=8),
        max_logit_scale=10.0,  # below CLIP's initial 14.3: the clamp binds from the first update
    )  # fmt: skip
    history = train(cfg, data, tmp_path / "out", progress=False, resume=False)["history"]
    rows = measure_gradients(cfg, data, steps=STEPS_PER_EPOCH + 1)
    # training measures on the first step of each epoch: updates 0 and 3
    for trained, measured in ((history[0], rows[0]), (history[1], rows[STEPS_PER_EPOCH])):
        grads = {k: v for k, v in trained.items() if k.startswith("grad_")}
        assert {"grad_all/clip", "grad_routers/clip", "grad_all/distance"} <= set(grads)
        assert {k: measured[k] for k in grads} == pytest.approx(grads, rel=1e-6, abs=0)
    assert rows[0]["logit_scale"] == pytest.approx(1 / 0.07)
    for row in rows[1:]:
        assert row["logit_scale"] <= cfg.max_logit_scale * (1 + 1e-6)
    assert math.isfinite(rows[-1]["clip"])
