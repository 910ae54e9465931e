"""How ``python -m app`` serves: one frozen :class:`ServerConfig`, built once at start.

:func:`server_config` is the only place that reads the environment for a serving setting: a
command-line flag wins; without one, the documented variable below; without that, the default.

- ``--host`` (default ``127.0.0.1``), ``--port`` (7860), ``--threads N`` (all cores but one);
- ``--explain-processes N``, else ``FAIRMOE_EXPLAIN_PROCESSES``, else 1.

A value that cannot work (``--threads 0``, ``FAIRMOE_EXPLAIN_PROCESSES=-1``) raises
:class:`ConfigError`, one line that ``python -m app`` prints before exiting with code 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "EXPLAIN_PROCESSES_ENV",
    "ConfigError",
    "ServerConfig",
    "default_threads",
    "server_config",
]

EXPLAIN_PROCESSES_ENV = "FAIRMOE_EXPLAIN_PROCESSES"  # fallback of --explain-processes


class ConfigError(ValueError):
    """A serving setting that cannot work; the message names the flag or variable."""


def default_threads() -> int:
    """All cores but one: on a busy 2-core machine, 2 torch threads that share their cores with
    the web server (or anything else) spin-wait, and explain() swings from 0.3 s to 5 s."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class ServerConfig:
    """The server's settings (see the module docstring for where each comes from)."""

    host: str = "127.0.0.1"  # this machine only: the app has no login
    port: int = 7860
    # torch CPU threads of the server and of each explanation process
    threads: int = field(default_factory=default_threads)
    # Child processes that compute explanations (fairmoe.worker), so that Captum's Python never
    # competes with the server's; 0 keeps a copy of the model in the server's process.
    explain_processes: int = 1

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {self.threads}")
        if self.explain_processes < 0:
            raise ConfigError(
                f"--explain-processes must be a whole number >= 0, got {self.explain_processes}"
            )

    @property
    def explain_concurrency(self) -> int:
        """Explanation events at once: one per process plus one, so that Gradio's reading of the
        next request and writing of the last answer overlap the processes' work; one with the
        model in the server's process (Captum's hooks on it must not meet)."""
        n = self.explain_processes
        return n + 1 if n else 1


def server_config(
    *,
    host: str | None = None,
    port: int | None = None,
    threads: int | None = None,
    explain_processes: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """The config from flags (None: not given), else ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    if explain_processes is None:
        raw = env.get(EXPLAIN_PROCESSES_ENV, "").strip()
        if raw and not raw.isdigit():
            raise ConfigError(f"{EXPLAIN_PROCESSES_ENV} must be a whole number >= 0, got {raw!r}")
        explain_processes = int(raw) if raw else None
    given = {"host": host, "port": port, "threads": threads, "explain_processes": explain_processes}
    return ServerConfig(**{k: v for k, v in given.items() if v is not None})
