"""Input validation shared by every metric: labels, scores, group codes, numbers.

Each check raises ``ValueError`` with a message that says what is wrong and what was expected, so
the app can show it to the user as is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fairmoe.schema import ATTRIBUTE_CHOICES, Attribute, attribute

__all__: list[str] = []  # private helpers of the other modules


def _check_inputs(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and scores; return (bool labels, float64 scores)."""
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise ValueError(
            f"y and scores must be 1-D of equal length; got shapes {y.shape}, {s.shape}"
        )
    if len(y) == 0:
        raise ValueError("y and scores are empty: nothing to evaluate")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        raise ValueError(f"y must hold 0/1 labels; found {np.unique(y[bad])[:5].tolist()}")
    finite = np.isfinite(s)
    if not finite.all():
        raise ValueError(
            f"scores must be finite; {int((~finite).sum())} are NaN or inf "
            f"(first at index {int(np.argmin(finite))})"
        )
    return y.astype(bool), s


def _check_codes(name: str, codes: Any, n: int, n_groups: int) -> np.ndarray:
    """Validate (n,) group codes in -1..n_groups-1; return them as int64."""
    c = np.asarray(codes)
    if c.shape != (n,):
        raise ValueError(f"{name} codes have shape {c.shape}; expected ({n},) like y")
    if c.dtype.kind == "f" and np.array_equal(c, np.round(c)):
        c = c.astype(np.int64)
    if c.dtype.kind not in "iub":
        raise ValueError(f"{name} codes must be integers, got dtype {c.dtype}")
    c = c.astype(np.int64)
    bad = (c < -1) | (c >= n_groups)
    if bad.any():
        raise ValueError(
            f"{name} codes must be -1 (unknown) or 0..{n_groups - 1}; "
            f"found {np.unique(c[bad])[:5].tolist()}"
        )
    return c


def _check_attrs(attrs: Mapping[str, Any], n: int) -> dict[str, tuple[Attribute, np.ndarray]]:
    """Validate attribute codes; return them in the schema's attribute order (base attributes,
    then crossed ones)."""
    out = {}
    for name in attrs:
        a = attribute(name)  # raises with the list of valid names
        out[name] = (a, _check_codes(f"attrs[{name!r}]", attrs[name], n, a.n_groups))
    return dict(sorted(out.items(), key=lambda kv: ATTRIBUTE_CHOICES.index(kv[1][0].name)))


def _finite(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {v}")
    return v


def _sample_thresholds(groups: np.ndarray, threshold: float | Sequence[float], g: int) -> Any:
    """One threshold, or (n,) per-sample thresholds from one threshold per group code."""
    if np.ndim(threshold) == 0:
        return _finite(threshold, "threshold")
    t = np.asarray(threshold, dtype=np.float64)
    if t.shape != (g,) or not np.isfinite(t).all():
        raise ValueError(f"per-group threshold must be {g} finite numbers; got {t.tolist()}")
    return np.r_[t, math.inf][groups]  # index -1 (unknown): left out of every group anyway
