"""The whole app: five tabs over one loaded Runtime, each built and wired by its module in
:mod:`app.tabs`.

Public endpoints (gradio_client): /predict, /explain, /fairness, /audit, /cohort, /models. Every
other event is private. Queue: predict, explain and cohort each have their own slot
(``model_events``); see :mod:`app.events` for the ``QUEUE_*`` limits and
:mod:`app.callbacks.serving` for batching and the explanation cache.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from app import callbacks as cb  # noqa: E402
from app import card, events  # noqa: E402
from app.events import QUEUE_CONCURRENCY, QUEUE_MAX_SIZE  # noqa: E402
from app.privacy import CLEAN_EVERY_S, SESSION_MAX_AGE_S, SessionFiles, cache_dir  # noqa: E402
from app.readiness import healthz_route  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.sessions import lazy_session_configs  # noqa: E402
from app.tabs.card import build_card_tab  # noqa: E402
from app.tabs.case import build_case_tab, wire_case  # noqa: E402
from app.tabs.cohort import build_cohort_tab, wire_cohort  # noqa: E402
from app.tabs.experts import build_experts_tab, wire_experts  # noqa: E402
from app.tabs.fairness import build_fairness_tab, wire_fairness  # noqa: E402
from app.theme import launch_style  # noqa: E402
from fairmoe.schema import OPERATING_POINT  # noqa: E402

__all__ = [
    "MAX_FILE_SIZE",
    "QUEUE_CONCURRENCY",
    "QUEUE_MAX_SIZE",
    "build_demo",
    "launch_kwargs",
]

# Single scans are limited to 50 MB by the Predictor; cohort zips need more room.
MAX_FILE_SIZE = "200mb"


def launch_kwargs(rt: Runtime) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch`` shared by ``python -m app``, tests and benchmarks."""
    return {
        **launch_style(),  # theme, CSS and the accessibility script (app/theme.py)
        "share": False,
        "max_file_size": MAX_FILE_SIZE,
        "allowed_paths": [str(rt.assets)],
        "footer_links": ["api", "settings"],
        "show_error": True,
        "ssr_mode": False,
        # GET /healthz (app/readiness.py), routed before Gradio's own routes
        "app_kwargs": {"routes": [healthz_route(rt)]},
    }


def build_demo(rt: Runtime, files: SessionFiles | None = None) -> gr.Blocks:
    """The whole app over one loaded runtime (model loaded once, shared by all users).

    ``files`` records each session's uploads and outputs, deleted when the session ends.
    """
    if files is None:
        examples = [ex.file for ex in rt.examples] + [
            ex.file.with_suffix(".npz") for ex in rt.examples
        ]
        files = SessionFiles([cache_dir(), rt.out_dir], public=examples)
    with gr.Blocks(
        title="Fair-MoE Studio",
        analytics_enabled=False,
        delete_cache=(CLEAN_EVERY_S, SESSION_MAX_AGE_S),
    ) as demo:
        # per user: last explanation + the pixels it refers to; cohort ScoreSet. Dropped when the
        # session ends (unload below), at the latest SESSION_MAX_AGE_S after they were set.
        case_state = gr.State(None, time_to_live=SESSION_MAX_AGE_S)
        cohort_state = gr.State(None, time_to_live=SESSION_MAX_AGE_S)
        gr.Markdown(card.header_markdown(rt), elem_id="header")
        with gr.Tabs():
            with gr.Tab("Case", id="case"):
                case = build_case_tab(rt)
            with gr.Tab("Experts", id="experts"):
                experts = build_experts_tab(rt)
            with gr.Tab("Fairness", id="fairness"):
                fair = build_fairness_tab(rt)
            with gr.Tab("Cohort", id="cohort"):
                cohort = build_cohort_tab(rt)
            with gr.Tab("Model card", id="card"):
                build_card_tab(rt)
        wire_case(rt, case, experts, case_state, files)
        wire_experts(rt, experts, case_state)
        wire_fairness(rt, fair, demo)
        wire_cohort(rt, cohort, cohort_state, files)

        def end_session(request: gr.Request) -> None:
            events.end_session(files, request)
            cb.forget_session(rt, events.session(request))  # cached explanations hold notes

        demo.unload(end_session)
        gr.api(partial_api(cb.fairness, rt), api_name="fairness")
        gr.api(partial_api(cb.models, rt), api_name="models")
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    cb.serving(rt)  # the batcher and the explanation model exist before the first request
    lazy_session_configs()  # a new session no longer holds the event loop ~23 ms
    return demo


def partial_api(fn: Any, rt: Runtime) -> Any:
    """``fn`` with ``rt`` bound, keeping the typed signature gr.api reads for the client."""
    if fn is cb.fairness:
        # A coroutine: Gradio runs it on its event loop instead of handing it to a worker
        # thread, which under load waits for the interpreter lock among dozens of others; the
        # answer itself costs about 1 ms (cached scores).
        async def fairness(
            model: str, attribute: str = "race", threshold: float = OPERATING_POINT
        ) -> dict:
            """Fairness metrics of a run's cached test scores at one threshold.

            Args:
                model: run name from /models (e.g. the loaded model's name)
                attribute: race, gender, ethnicity or language
                threshold: decision threshold on the calibrated probability, 0 to 1
            """
            return cb.fairness(rt, model, attribute, threshold)

        return fairness

    def models() -> list:
        """The runs whose cached test scores /fairness can evaluate."""
        return cb.models(rt)

    return models
