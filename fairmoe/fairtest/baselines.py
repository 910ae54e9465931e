"""Cost-free post-processing of one model's scores, fit on validation and applied to test.

- fairlearn's ``ThresholdOptimizer`` (Hardt et al.) with equalized odds and with TPR parity:
  group-specific, possibly randomised thresholds. Its decisions are soft here (the probability
  of a positive call, ``_pmf_predict``), so every rate is an expected value, not one coin toss.
- Per-group thresholds: each group's own threshold reaching the target sensitivity on
  validation (equal opportunity at the clinical operating point).

The race code -1 (unknown) never occurs in the synthetic data; a real cohort's unknowns are
treated as one more group by fairlearn and get the overall threshold here.
"""

from __future__ import annotations

import numpy as np

from fairmoe.metrics.thresholds import SENSITIVITY_TARGET, threshold_for_sensitivity

__all__ = ["BASELINES", "fit_baseline"]

BASELINES = ("threshold_optimizer_eo", "threshold_optimizer_tpr", "per_group_thresholds")


def _scores_estimator():
    """A prefit sklearn estimator whose prediction is the score itself (column 0 of X)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scores(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):  # noqa: N803 (sklearn's spelling)
            self.classes_ = np.array([0, 1])
            return self

        def predict(self, X):  # noqa: N803
            return np.asarray(X)[:, 0]

    return Scores().fit(None, None)


def fit_baseline(name: str, val: tuple, target: float = SENSITIVITY_TARGET):
    """``decide(scores, groups) -> soft decisions`` fit on ``val = (y, scores, groups)``."""
    y, s, g = (np.asarray(a) for a in val)
    if name == "per_group_thresholds":
        overall = threshold_for_sensitivity(y, s, target)
        t = {int(c): threshold_for_sensitivity(y[g == c], s[g == c], target)
             for c in np.unique(g) if (y[g == c] == 1).any()}  # fmt: skip

        def decide(scores, groups):
            th = np.array([t.get(int(c), overall) for c in groups])
            return (np.asarray(scores) >= th).astype(np.float64)

        return decide
    from fairlearn.postprocessing import ThresholdOptimizer

    constraints = {"threshold_optimizer_eo": "equalized_odds",
                   "threshold_optimizer_tpr": "true_positive_rate_parity"}[name]  # fmt: skip
    opt = ThresholdOptimizer(estimator=_scores_estimator(), constraints=constraints,
                             objective="balanced_accuracy_score", prefit=True,
                             predict_method="predict")  # fmt: skip
    opt.fit(s[:, None], y, sensitive_features=g)

    def decide(scores, groups):
        return opt._pmf_predict(np.asarray(scores)[:, None], sensitive_features=groups)[:, 1]

    return decide
