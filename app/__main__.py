"""python -m app [--checkpoint PATH] [--assets DIR] [--host 127.0.0.1] [--port 7860]

Loads the model once and serves the app locally (no share link, no analytics). A checkpoint or
assets folder that cannot be loaded gives one error line and exit code 2.
"""

from __future__ import annotations

import os

# Before gradio, open_clip or huggingface_hub are imported: nothing may reach the internet.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import argparse  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from app.runtime import Runtime


def build_parser() -> argparse.ArgumentParser:
    from app.runtime import DEFAULT_ASSETS

    p = argparse.ArgumentParser(prog="python -m app", description="Fair-MoE Studio (Gradio app)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint NAME.json (default: runs.json's)")
    p.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help="assets folder")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    p.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="torch CPU threads (default: all cores but one, which serves the web requests)",
    )
    p.add_argument("--no-warm-up", action="store_true", help="skip the warm-up explanation")
    return p


MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(n: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas, unless MALLOC_ARENA_MAX is set; False off glibc.

    Gradio serves sync handlers from a pool of up to 40 threads and glibc gives each thread its
    own arena, which keeps freed pages: under 32 concurrent users the server's memory climbed
    ~470 MiB over four rounds and levelled off; with 2 arenas it rose 63 MiB, at the same latency
    (benchmarks/bench_load.py, README: Reliability).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False  # glibc read it at start-up
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, n) == 1
    except (OSError, AttributeError):
        return False


def default_threads() -> int:
    """All cores but one: on a busy 2-core machine, 2 torch threads that share their cores with
    the web server (or anything else) spin-wait, and explain() swings from 0.3 s to 5 s."""
    return max(1, (os.cpu_count() or 2) - 1)


def startup_warnings(rt: Runtime) -> list[str]:
    """One line per thing the app could not verify or had to leave out at start."""
    out = []
    if not rt.manifest.present:
        out.append(f"warning: {rt.assets} has no MANIFEST.json; files not verified")
    out += [f"warning: MANIFEST.json: {p}" for p in rt.manifest.problems.values()]
    out += [f"warning: left out {reason}" for reason in rt.skipped]
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        print(f"error: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    limit_malloc_arenas()  # before the server's threads exist
    from app.privacy import use_private_cache

    use_private_cache()  # before any Gradio component exists: uploads go to a 0700 folder
    from app.events import explain_processes, is_legacy

    try:
        explain_processes()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    from app.runtime import StartupError, load_runtime

    try:
        rt = load_runtime(args.assets, args.checkpoint, warm_up=not args.no_warm_up)
    except StartupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from app.callbacks.serving import shutdown
    from app.prefetch import prefetch_fairness_cis
    from app.ui import build_demo, launch_kwargs

    for line in startup_warnings(rt):
        print(line, file=sys.stderr)
    demo = build_demo(rt)
    # every run's AUC CIs, in idle CPU time (the legacy layout serves as the app did before)
    prefetch = None if is_legacy() else prefetch_fairness_cis(rt)
    # SIGTERM (systemd, docker stop, tests) exits normally, so atexit removes the output folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        demo.launch(server_name=args.host, server_port=args.port, **launch_kwargs(rt))
    except OSError as e:  # port in use, cannot bind
        print(f"error: cannot serve on {args.host}:{args.port} ({e})", file=sys.stderr)
        return 2
    finally:
        shutdown(rt)  # the explanation processes
        if prefetch is not None:
            prefetch.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
