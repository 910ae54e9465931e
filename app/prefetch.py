"""Every run's bootstrap AUC CIs, computed in the background at the lowest CPU priority.

The first fairness query of a run and attribute bootstraps its AUC CIs (~60 ms of numpy at 2,000
cases); every later one reads them from the run's memo. The app ships 36 runs x 4 attributes, so
under load most fairness queries were first ones, and those bootstraps were the largest share of
the server's own CPU time (py-spy of ``benchmarks/bench_load.py``). After start, one thread at
niceness 19 computes them all (~9 s of CPU that would otherwise sit idle; the loaded model's run
first), so a clinician's first look at any run is as quick as the second.
"""

from __future__ import annotations

import contextlib
import os
import threading

from app.runtime import Runtime
from fairmoe.schema import ATTRIBUTE_NAMES

__all__ = ["NICENESS", "PREFETCH_ENV", "prefetch_fairness_cis"]

NICENESS = 19  # Linux: the thread gets only CPU time nothing else wants
PREFETCH_ENV = "FAIRMOE_PREFETCH_CIS"  # "0": compute each run's CIs on its first query only


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)


def _prefetch(rt: Runtime) -> None:
    _lower_priority()
    runs = sorted(rt.runs.values(), key=lambda r: r.name != rt.default_run)
    for run in runs:
        for attr in ATTRIBUTE_NAMES:
            if attr in run.scores.attrs:
                run.scores.auc_ci(attr)


def prefetch_fairness_cis(rt: Runtime) -> threading.Thread | None:
    """Start the background thread (None when ``FAIRMOE_PREFETCH_CIS=0``)."""
    if os.environ.get(PREFETCH_ENV, "1").strip() == "0":
        return None
    thread = threading.Thread(target=_prefetch, args=(rt,), name="fairmoe-prefetch", daemon=True)
    thread.start()
    return thread
