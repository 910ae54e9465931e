"""The pre-registered verdict (docs/fair_test/PREREGISTERED.md), one criterion at a time.

Every difference is oriented so that larger is fairer: worst-group AUC gained, TPR gap narrowed,
stamp reliance cut, each against CLIP with paired seeds. A criterion is met when
- the share of the oracle headroom recovered (for reliance: the share of CLIP's reliance cut) is
  >= 0.5,
- the paired 95% CI of the difference excludes 0 (lies above it), and
- the method's AUC is at least CLIP's - 0.01.
Positive: Fair-MoE meets a criterion that Fair-MoE without FOL does not meet. Negative: every
criterion's CI lies within +-0.01 and the positive control showed the gap was closable.
Inconclusive: anything else.
"""

from __future__ import annotations

import math

__all__ = ["CRITERIA", "criterion_met", "verdict"]

CRITERIA = {
    "worst_group_auc": "worst-group AUC gained (share of the oracle headroom)",
    "tpr_gap": "TPR gap at the validation operating point narrowed (share of the oracle headroom)",
    "stamp_reliance": "White AUC lost without the stamp, cut (share of CLIP's reliance)",
}
RECOVER = 0.5
AUC_MARGIN = 0.01
NEGATIVE_BAND = 0.01


def criterion_met(c: dict | None, auc_diff: float) -> tuple[bool, str]:
    """Whether one comparison meets its criterion, and the reason in words."""
    if c is None:
        return False, "not measured"
    share, lo = c.get("share"), c["ci"][0]
    if share is None or not math.isfinite(share):
        return False, "no headroom to recover"
    ok = share >= RECOVER and lo > 0 and auc_diff >= -AUC_MARGIN
    hi = c["ci"][1]
    side = "lies above 0" if lo > 0 else "lies below 0: worse than CLIP" if hi < 0 else "includes 0"
    why = (f"recovers {share:.0%} (needs >= {RECOVER:.0%}), CI [{lo:+.3f}, {hi:+.3f}] {side}, "
           f"AUC {auc_diff:+.3f} vs CLIP (needs >= -{AUC_MARGIN})")  # fmt: skip
    return ok, why


def verdict(fairmoe: dict, nofol: dict, control_holds: bool) -> dict:
    """``fairmoe``/``nofol``: {"auc_diff": x, criterion: comparison or None}. The verdict, the
    criterion (if any) that made it positive, and one line per criterion."""
    lines, positive_on = {}, []
    for key in CRITERIA:
        met, why = criterion_met(fairmoe.get(key), fairmoe["auc_diff"])
        ab_met, ab_why = criterion_met(nofol.get(key), nofol["auc_diff"]) if nofol else (False, "")
        lines[key] = {"fairmoe_met": met, "fairmoe": why, "nofol_met": ab_met, "nofol": ab_why}
        if met and not ab_met:
            positive_on.append(key)
    measured = [fairmoe[k] for k in CRITERIA if fairmoe.get(k) is not None]
    within = bool(measured) and all(
        c["ci"][0] >= -NEGATIVE_BAND and c["ci"][1] <= NEGATIVE_BAND for c in measured
    )
    if positive_on:
        word = "positive"
    elif within and control_holds:
        word = "negative"
    else:
        word = "inconclusive"
    return {"verdict": word, "positive_on": positive_on, "criteria": lines}
