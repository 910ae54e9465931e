"""Every run's bootstrap AUC CIs, computed after start in a separate process at the lowest CPU
priority.

The first fairness query of a run and attribute bootstraps its AUC CIs (~60 ms of numpy at 2,000
cases); every later one reads them from the run's memo. The app ships 36 runs x 4 attributes, so
under load most fairness queries were first ones, and those bootstraps were the largest share of
the server's own CPU time (py-spy of ``benchmarks/bench_load.py``). After start, one process at
niceness 19 computes them all (~9 s of CPU that would otherwise sit idle; the loaded model's run
first) and a thread of the server stores them as they come, so a clinician's first look at any run
is as quick as the second. A process, not a thread: a thread's numpy would still hold the server's
interpreter lock between its array operations (one user's predictions took 118 ms instead of 61).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
from concurrent.futures import CancelledError, ProcessPoolExecutor

from app.runtime import Runtime
from fairmoe.metrics import bootstrap_ci
from fairmoe.schema import ATTRIBUTE_NAMES

__all__ = ["NICENESS", "PREFETCH_ENV", "Prefetch", "prefetch_fairness_cis"]

NICENESS = 19  # the process gets only CPU time nothing else wants
PREFETCH_ENV = "FAIRMOE_PREFETCH_CIS"  # "0": compute each run's CIs on its first query only


class Prefetch:
    """The running prefetch: a thread that submits the jobs and stores the answers."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        # spawn: no fork of a threaded server; the worker imports numpy and fairmoe.metrics only
        self.pool = ProcessPoolExecutor(
            1,
            mp_context=mp.get_context("spawn"),
            # os.setpriority itself: a function of ours would make the worker import the app
            initializer=getattr(os, "setpriority", None),  # Linux and macOS
            initargs=(getattr(os, "PRIO_PROCESS", 0), 0, NICENESS),
        )
        self.thread = threading.Thread(target=self._run, name="fairmoe-prefetch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        runs = sorted(self.rt.runs.values(), key=lambda r: r.name != self.rt.default_run)
        jobs = [(run, a) for run in runs for a in ATTRIBUTE_NAMES if a in run.scores.attrs]
        try:
            futures = [
                self.pool.submit(bootstrap_ci, **run.scores.auc_ci_job(a)) for run, a in jobs
            ]
            for (run, attr), future in zip(jobs, futures, strict=True):
                run.scores.remember_auc_ci(attr, future.result())
        except CancelledError:  # stop(): the server is going
            pass
        except Exception as e:  # the CIs are then computed on each run's first query
            print(f"warning: prefetching the fairness CIs failed ({e})", file=sys.stderr)
        finally:
            self.pool.shutdown(wait=False)

    def stop(self) -> None:
        """Drop what is not done yet (the server is stopping)."""
        self.pool.shutdown(wait=False, cancel_futures=True)


def prefetch_fairness_cis(rt: Runtime) -> Prefetch | None:
    """Start the background prefetch (None when ``FAIRMOE_PREFETCH_CIS=0``); the server's
    thread only waits for the process's answers."""
    if os.environ.get(PREFETCH_ENV, "1").strip() == "0":
        return None
    return Prefetch(rt)
