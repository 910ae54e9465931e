"""Fairness metrics with FairCLIP's semantics: AUC, group AUC, ES-AUC, ES-ACC, DPD, DEOdds.

FairCLIP's ``evalute_comprehensive_perf`` (see notes/fair-moe-and-fairclip.md 2.5), re-implemented in
numpy, plus a fast path for threshold sliders (:class:`ScoreTable`), What-If-Tool threshold strategies
(:func:`choose_thresholds`) and bootstrap confidence intervals (:func:`bootstrap_ci`).

Conventions shared by every function here:

- ``y`` (n,) 0/1 labels, ``scores`` (n,) glaucoma probabilities (any finite floats work),
  ``attrs`` maps attribute names of :data:`fairmoe.schema.ATTRIBUTES` to (n,) integer codes.
- A prediction is positive when ``score >= threshold`` (FairCLIP's ``preds >= 0.5``); the default
  threshold is :data:`fairmoe.schema.OPERATING_POINT`.
- Code -1 (unknown) is left out of that attribute's groups but kept in overall metrics.
- A group with no members (a code nobody has) is listed with n = 0 and left out of DPD, DEOdds,
  ES-AUC and ES-ACC, as fairlearn only sees the groups present in the data.
- Undefined values (AUC of a one-class group, TPR without positives, ...) are ``float('nan')`` in the
  small array functions and ``None`` in report dictionaries, so ``json.dumps(report,
  allow_nan=False)`` works.
- ES-AUC and ES-ACC sum over the groups whose value is defined. FairCLIP would return nan if one
  group lacked a class; skipping it keeps the number usable and the group's ``auc`` shows None.
- DPD and DEOdds follow fairlearn 0.15 exactly, including one surprise: fairlearn computes TPR and
  FPR with ``sklearn.metrics.confusion_matrix(normalize="true")``, which turns 0/0 into 0. A group
  with no positives therefore counts with TPR 0 (and one with no negatives with FPR 0) in DEOdds,
  which can make DEOdds large for a tiny group. The group's own ``tpr`` is None in the report so
  that a reader can see why.

Modules: :mod:`~fairmoe.metrics.ranking` (AUC, ES-AUC, ES-ACC), :mod:`~fairmoe.metrics.rates`
(confusion counts, rates, DPD, DEOdds), :mod:`~fairmoe.metrics.report` (:func:`evaluate`),
:mod:`~fairmoe.metrics.table` (:class:`ScoreTable`), :mod:`~fairmoe.metrics.thresholds`
(:func:`choose_thresholds`) and :mod:`~fairmoe.metrics.bootstrap` (:func:`bootstrap_ci`).
"""

from __future__ import annotations

from fairmoe.metrics.bootstrap import BOOT_METRICS, BootMetric, bootstrap_ci
from fairmoe.metrics.bootstrap import _resample_indices as _resample_indices  # tests replay draws
from fairmoe.metrics.ranking import auc, es_acc, es_auc, group_aucs
from fairmoe.metrics.rates import accuracy, deodds, dpd
from fairmoe.metrics.report import GROUP_SUMMARY, evaluate, format_report_table
from fairmoe.metrics.table import ScoreTable
from fairmoe.metrics.thresholds import STRATEGIES, Strategy, Thresholds, choose_thresholds

__all__ = [
    "BOOT_METRICS",
    "GROUP_SUMMARY",
    "STRATEGIES",
    "BootMetric",
    "ScoreTable",
    "Strategy",
    "Thresholds",
    "accuracy",
    "auc",
    "bootstrap_ci",
    "choose_thresholds",
    "deodds",
    "dpd",
    "es_acc",
    "es_auc",
    "evaluate",
    "format_report_table",
    "group_aucs",
]
