"""The fair test: clinical group metrics, paired bootstrap, post-processing baselines, verdicts.

Modules: :mod:`~fairmoe.fairtest.clinical` (what a clinician sees per group: worst-group AUC,
TPR/FNR/FPR at an operating point, ECE, ES-AUC, DPD, DEOdds), :mod:`~fairmoe.fairtest.paired`
(paired bootstrap of a difference between methods over the same cases and seeds),
:mod:`~fairmoe.fairtest.baselines` (fairlearn's ThresholdOptimizer and per-group thresholds on
a model's scores), :mod:`~fairmoe.fairtest.verdict` (the pre-registered criteria of
docs/fair_test/PREREGISTERED.md) and :mod:`~fairmoe.fairtest.run` (scoring the plan's runs and
writing results.json and RESULTS.md).
"""
