"""The shortcut probe re-renders the generator's own cases faithfully and reports per group."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fairmoe.data.fairvlmed import read_npz
from fairmoe.data.synthetic import generate, render_scan, sample_params
from fairmoe.model import create_model, get_config
from fairmoe.probe import COUNTERFACTUALS, build_cases, mechanism, probe_model, read_settings


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("probe") / "d", n=80, seed=4, bias=1.0, workers=1)


def test_counterfactuals_are_the_same_patient(data: Path) -> None:
    s = read_settings(data)
    assert (s.seed, s.bias, s.mechanisms) == (4, 1.0, "all")
    cases = build_cases(data, 64)
    n = len(cases.ids)
    assert n > 5 and cases.original.shape == (n, 64, 64)
    # a stamp can only be removed where there is one, and swapping changes every case
    assert np.array_equal(cases.changed["no_stamp"], cases.marker)
    assert cases.changed["swapped_stamp"].all()
    # the generator re-renders the stored scan exactly: counterfactuals differ only by design
    first = cases.ids[0]
    p = sample_params(int(first.split("_")[-1]), seed=4, bias=1.0)
    stored = read_npz(data / "Test" / f"{first}.npz")["image"]
    assert np.array_equal(render_scan(p), stored)
    unchanged = ~cases.changed["no_stamp"]
    assert torch.equal(cases.variants["no_stamp"][unchanged], cases.original[unchanged])
    where = cases.stamp_patch(4)
    assert ((where >= 0) == cases.marker).all() and where.max() < 16


def test_probe_and_mechanism_report(data: Path) -> None:
    torch.manual_seed(0)
    cfg = get_config("tiny", **{"vision.pool_type": "avg"})
    model = create_model(cfg, method="fairmoe", n_groups=3).eval()
    cases = build_cases(data, 64)
    rep = probe_model(model, 0.05, cases)
    assert set(rep) == set(COUNTERFACTUALS)
    row = rep["no_stamp"]["all"]
    assert row["n"] == len(cases.ids) and row["n_changed"] == int(cases.marker.sum())
    assert row["mean_abs_change"] is None or 0 <= row["mean_abs_change"] <= 1
    mech = mechanism(model, cases)
    assert mech["n_stamped"] == int(cases.marker.sum())
    for key in ("dropped", "gate"):
        lo, hi = mech[key]["ci"]
        assert lo <= mech[key]["difference"] <= hi
    assert mechanism(create_model(cfg, method="clip").eval(), cases) is None
