"""One optimiser step for training and ``measure_gradients``: the same update, the same gradients."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fairmoe import losses
from fairmoe.data.synthetic import generate
from fairmoe.training import TrainConfig, measure_gradients, train
from fairmoe.training.loop import _setup
from fairmoe.training.step import _separate_sides
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


class _Spy(torch.nn.Module):
    """The model, recording the text token ids of every batch it encodes."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.seen = model, []

    def forward(self, x, tokens):
        self.seen.append(tokens.clone())
        return self.inner(x, tokens)


@pytest.mark.parametrize("group_text", ["notes", "training"])
def test_group_batches_read_the_chosen_text(tmp_path: Path, group_text: str) -> None:
    data = generate(tmp_path / "d", n=40, seed=0, workers=1)
    cfg = TrainConfig(method="fairclip", text_source="label", group_text=group_text, limit=24,
                      loss=losses.LossConfig(group_batch_size=6))  # fmt: skip
    ctx = _setup(cfg, data, torch.device("cpu"), None).ctx
    spy = _Spy(ctx.model)
    sides = _separate_sides(dataclasses.replace(ctx, model=spy), np.random.default_rng(0))
    assert len(sides) == 3 and len(spy.seen) == 3
    prompts = {tuple(t.tolist()) for t in ctx.prompt_tokens}
    rows = [tuple(t.tolist()) for batch in spy.seen for t in batch]
    if group_text == "training":  # text_source "label": the class prompts, as in training
        assert set(rows) <= prompts
    else:
        assert not set(rows) & prompts
