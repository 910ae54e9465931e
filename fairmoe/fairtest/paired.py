"""Paired bootstrap of a difference between two methods: same seeds, same test cases.

Each resample draws the test cases once (with replacement) and evaluates every model on those
cases; the difference is the mean over seeds of ``stat(b_seed) - stat(a_seed)``. Pairing keeps
the case-to-case variation that both methods share out of the interval, so it is much narrower
than two separate intervals. Seeds are paired (seed s of one method against seed s of the other)
and not resampled: with three seeds the interval covers the test cases' variation at these
seeds, which the note states beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["N_BOOT", "paired_difference"]

N_BOOT = 1000
Stat = Callable[[np.ndarray], float]  # the statistic of one model on the cases idx


def paired_difference(
    a: Sequence[Stat], b: Sequence[Stat], n: int, *, n_boot: int = N_BOOT, seed: int = 0
) -> dict:
    """Point estimate and 95% percentile interval of mean_s(b_s - a_s) over case resamples."""
    if len(a) != len(b) or not a:
        raise ValueError(f"need the same number of seeds on both sides, got {len(a)} and {len(b)}")
    every = np.arange(n)
    point = float(np.mean([fb(every) - fa(every) for fa, fb in zip(a, b, strict=True)]))
    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    for k in range(n_boot):
        idx = rng.integers(0, n, n)
        draws[k] = np.mean([fb(idx) - fa(idx) for fa, fb in zip(a, b, strict=True)])
    draws = draws[np.isfinite(draws)]
    lo, hi = np.quantile(draws, [0.025, 0.975]) if len(draws) else (np.nan, np.nan)
    return {"diff": point, "ci": [float(lo), float(hi)], "n_boot": int(len(draws)),
            "seeds": len(a)}  # fmt: skip
