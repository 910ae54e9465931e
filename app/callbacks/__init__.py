"""Event handlers as plain functions of (runtime, inputs): the tabs bind them, tests call them.

One module per tab (:mod:`~app.callbacks.case_tab`, :mod:`~app.callbacks.experts_tab`,
:mod:`~app.callbacks.fairness_tab`, :mod:`~app.callbacks.cohort_tab`), the view of the fairness
panel both the Fairness and Cohort tabs show (:mod:`~app.callbacks.panel`), where its scores come from (:mod:`~app.callbacks.source`) and
what they share (:mod:`~app.callbacks.common`). Every name is re-exported here; the tab modules end in ``_tab`` so
that ``app.callbacks.fairness`` and ``app.callbacks.cohort`` stay the endpoints, not modules.

The public endpoints (``predict``, ``explain``, ``model_maps``, ``fairness``, ``models``,
``cohort``) return
JSON-ready data; the ``*_view`` functions turn that data into what the UI shows. User mistakes
become ``gr.Error`` with the Predictor's message; anything else is our bug and propagates.
"""

from __future__ import annotations

from app.callbacks.audit import audit, own_scores, panel_audit
from app.callbacks.case_tab import (
    NOT_GIVEN,
    PREVIEW_PX,
    attribute_choices,
    case_view,
    context_view,
    display_pixels,
    inspect_upload,
    load_example,
    predict,
    preview,
)
from app.callbacks.cohort_tab import bad_rows_table, cohort, cohort_panel, cohort_view
from app.callbacks.common import numpy_free, upload_path
from app.callbacks.experts_tab import (
    default_shown,
    expert_choices,
    experts_first_view,
    experts_view,
    explain,
    model_maps,
)
from app.callbacks.fairness_tab import (
    MAX_GROUPS,
    StrategyChoice,
    StrategyUpdate,
    check_attribute,
    check_cost,
    fairness,
    fairness_scenario,
    fairness_select,
    fairness_strategy,
    fairness_tradeoff,
    fairness_update,
    group_slider_updates,
    menu_default,
    model_choices,
    models,
    scores_of,
    sensitivity_preset,
)
from app.callbacks.panel import panel_view
from app.callbacks.serving import forget_session, serving
from app.callbacks.source import (
    USER_SCORES,
    ScoreSource,
    missing_scores,
    require_source,
    resolve_source,
    run_metadata,
)

__all__ = [
    "MAX_GROUPS",
    "NOT_GIVEN",
    "PREVIEW_PX",
    "USER_SCORES",
    "ScoreSource",
    "StrategyChoice",
    "StrategyUpdate",
    "attribute_choices",
    "audit",
    "bad_rows_table",
    "case_view",
    "check_attribute",
    "check_cost",
    "cohort",
    "cohort_panel",
    "cohort_view",
    "context_view",
    "default_shown",
    "display_pixels",
    "expert_choices",
    "experts_first_view",
    "experts_view",
    "explain",
    "fairness",
    "fairness_scenario",
    "fairness_select",
    "fairness_strategy",
    "fairness_tradeoff",
    "fairness_update",
    "forget_session",
    "group_slider_updates",
    "inspect_upload",
    "load_example",
    "menu_default",
    "model_choices",
    "model_maps",
    "models",
    "numpy_free",
    "own_scores",
    "panel_audit",
    "panel_view",
    "predict",
    "preview",
    "missing_scores",
    "require_source",
    "resolve_source",
    "run_metadata",
    "scores_of",
    "sensitivity_preset",
    "serving",
    "upload_path",
]
