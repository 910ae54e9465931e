"""python -m app [--checkpoint PATH] [--assets DIR] [--host 127.0.0.1] [--port 7860]
                 [--threads N] [--explain-processes N] [--no-warm-up]

Loads the model once and serves the app locally (no share link, no analytics). A checkpoint or
assets folder that cannot be loaded, or a setting that cannot work, gives one error line and exit
code 2. The serving flags and their environment fallbacks: :mod:`app.config`.
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
    from app.config import EXPLAIN_PROCESSES_ENV, ServerConfig, default_threads
    from app.startup import DEFAULT_ASSETS

    # The serving flags default to None (not given): app.config.server_config fills them in.
    p = argparse.ArgumentParser(prog="python -m app", description="Fair-MoE Studio (Gradio app)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint NAME.json (default: runs.json's)")
    p.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help="assets folder")
    p.add_argument("--host", help=f"interface to listen on (default {ServerConfig.host})")
    p.add_argument("--port", type=int, help=f"port to listen on (default {ServerConfig.port})")
    p.add_argument(
        "--threads",
        type=int,
        help=f"torch CPU threads (default: all cores but one, {default_threads()} here; the "
        "other serves the web requests)",
    )
    p.add_argument(
        "--explain-processes",
        type=int,
        metavar="N",
        help=f"child processes that compute explanations; 0: in the server's process "
        f"(default: ${EXPLAIN_PROCESSES_ENV}, else {ServerConfig.explain_processes})",
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
    from app.config import ConfigError, server_config

    try:
        config = server_config(
            host=args.host,
            port=args.port,
            threads=args.threads,
            explain_processes=args.explain_processes,
        )
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    limit_malloc_arenas()  # before the server's threads exist
    from app.startup import prestart_explainer

    # First of all (light imports only): the explanation processes import torch and load the
    # model while this process does.
    explainer = prestart_explainer(args.assets, args.checkpoint, config)
    from app.privacy import use_private_cache

    use_private_cache()  # before any Gradio component exists: uploads go to a 0700 folder
    import torch

    torch.set_num_threads(config.threads)
    from app.readiness import start_serving
    from app.runtime import StartupError, load_runtime

    try:
        rt = load_runtime(args.assets, args.checkpoint, warm_up=not args.no_warm_up, config=config)
    except StartupError as e:
        if explainer is not None:
            explainer.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    from app.callbacks.serving import shutdown
    from app.ui import build_demo, launch_kwargs
    from fairmoe.worker import WorkerError

    for line in startup_warnings(rt):
        print(line, file=sys.stderr)
    try:  # the port opens only once every explanation process has loaded the model
        start_serving(rt, explainer)
    except WorkerError as e:
        shutdown(rt)
        print(f"error: {e}", file=sys.stderr)
        return 2
    demo = build_demo(rt)
    # SIGTERM (systemd, docker stop, tests) exits normally, so atexit removes the output folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        demo.launch(server_name=config.host, server_port=config.port, **launch_kwargs(rt))
    except OSError as e:  # port in use, cannot bind
        print(f"error: cannot serve on {config.host}:{config.port} ({e})", file=sys.stderr)
        return 2
    finally:
        shutdown(rt)  # the explanation processes
    return 0


if __name__ == "__main__":
    sys.exit(main())
