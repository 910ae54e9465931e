"""Temperature calibration and the OOD reference, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairmoe.calibration import OODReference, fit_temperature, glaucoma_probability


def test_probability_is_a_tempered_sigmoid_for_arrays_and_tensors() -> None:
    cos = np.array([[0.1, 0.3], [0.2, 0.2], [0.5, -0.1]])
    expected = 1 / (1 + np.exp(-(cos[:, 1] - cos[:, 0]) / 0.05))
    np.testing.assert_allclose(glaucoma_probability(cos, temperature=0.05), expected, rtol=1e-12)
    t = glaucoma_probability(torch.tensor(cos), temperature=0.05)
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-12)


def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0, 0.05, 20_000)  # cos_glaucoma - cos_non
    y = rng.random(20_000) < 1 / (1 + np.exp(-d / 0.02))  # labels drawn at T = 0.02
    cos = np.stack([np.zeros_like(d), d], axis=1)
    assert fit_temperature(cos, y) == pytest.approx(0.02, rel=0.05)


def test_ood_reference_round_trip_and_distance() -> None:
    rng = np.random.default_rng(1)
    feats = rng.normal(0, 1, (500, 8))
    ref = OODReference.fit(feats, 0.99)
    again = OODReference.from_dict(ref.to_dict())
    assert again == ref
    z = (feats[0] - np.array(ref.mean)) / np.array(ref.std)
    assert ref.distance(torch.tensor(feats[0])) == pytest.approx(np.sqrt((z**2).mean()), rel=1e-5)
    flagged = np.mean([ref.is_novel(torch.tensor(f)) for f in feats])
    assert flagged == pytest.approx(0.01, abs=0.01)  # the quantile sets the false-alarm share
    assert ref.is_novel(torch.full((8,), 10.0))


def test_band_wording_and_contradiction() -> None:
    from fairmoe.metrics.reliability import Band
    from fairmoe.wording import band_for, band_sentence, contradicts

    assert band_for(0.15, 0.5) == (0.0, 0.2)
    assert band_for(0.2, 0.5) == (0.0, 0.3)
    assert band_for(0.85, 0.5) == (0.8, 1.0)
    assert band_for(0.45, 0.5) == (0.0, 0.5)
    b = Band(0.0, 0.2, 32, 9)
    assert band_sentence("Black patients", b) == (
        "Of Black patients scored below 0.2 in the test set, 28% had glaucoma (9 of 32)."
    )
    assert contradicts(b) and not contradicts(Band(0.0, 0.2, 318, 29))
    assert not contradicts(Band(0.0, 0.2, 5, 4))  # too few to say
    assert contradicts(Band(0.8, 1.0, 40, 28)) and not contradicts(Band(0.8, 1.0, 40, 34))
