"""Bootstrap CIs of the /fairness endpoint: this tree against an earlier revision, one process.

python benchmarks/bench_bootstrap.py [--rev f469053] [--n 2000] [--repeats 7]

Loads ``fairmoe/metrics/ranking.py`` and ``bootstrap.py`` of ``--rev`` (``git show``) beside the
working tree's, checks that both give JSON-identical CIs on seeded cohorts with many ties, then
times the threshold-free AUC CIs (what a first /fairness query of a run and attribute computes)
and all metrics at 1,000 resamples. Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from fairmoe.metrics import bootstrap as current  # noqa: E402

AUC_CI = ("auc", "es_auc", "group_auc")


def _module(name: str, source: str, folder: Path) -> ModuleType:
    path = folder / f"{name.rsplit('.', 1)[-1]}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _old(rev: str, folder: Path) -> ModuleType:
    def show(path: str) -> str:
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    _module("fairmoe.metrics.ranking_then", show("fairmoe/metrics/ranking.py"), folder)
    src = show("fairmoe/metrics/bootstrap.py").replace(
        "from fairmoe.metrics.ranking import", "from fairmoe.metrics.ranking_then import"
    )
    return _module("fairmoe.metrics.bootstrap_then", src, folder)


def _cohort(rng: np.random.Generator, n: int, decimals: int) -> tuple:
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n), decimals)
    race = np.where(rng.random(n) < 0.05, -1, rng.choice(3, n, p=[0.08, 0.15, 0.77]))
    return y, s, {"race": race}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", default="f469053", help="the revision to compare with")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        then = _old(args.rev, Path(tmp))
        rng = np.random.default_rng(0)
        for trial in range(8):
            y, s, attrs = _cohort(rng, int(rng.integers(30, 7000)), int(rng.integers(1, 7)))
            for metrics in (AUC_CI, None):
                kw = {"threshold": 0.5, "n_boot": 200, "seed": trial}
                if metrics:
                    kw["metrics"] = metrics
                a, b = then.bootstrap_ci(y, s, attrs, **kw), current.bootstrap_ci(y, s, attrs, **kw)
                assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True), trial
        print(f"identical CIs on 8 cohorts (30-7,000 cases, 1-6 decimals), {args.rev} vs this tree")
        y, s, attrs = _cohort(np.random.default_rng(1), args.n, 6)
        for label, metrics in (("AUC CIs (first /fairness query)", AUC_CI), ("all metrics", None)):
            times: dict[str, list[float]] = {"then": [], "now": []}
            for _ in range(args.repeats):  # interleaved: both sides see the same machine load
                for key, mod in (("then", then), ("now", current)):
                    kw = {"threshold": 0.5, "n_boot": 1000}
                    if metrics:
                        kw["metrics"] = metrics
                    t = time.perf_counter()
                    mod.bootstrap_ci(y, s, attrs, **kw)
                    times[key].append(time.perf_counter() - t)
            t_then, t_now = (statistics.median(times[k]) * 1e3 for k in ("then", "now"))
            print(f"{label:32s} n={args.n}, 1000 resamples: {args.rev} {t_then:6.1f} ms, "
                  f"now {t_now:6.1f} ms, ratio {t_now / t_then:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
