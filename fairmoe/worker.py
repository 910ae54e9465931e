"""A Predictor in a child process, for explanations.

Integrated Gradients through Captum spends a good part of its time in Python (module calls, hooks,
autograd bookkeeping). In the web server's process that Python competes for one interpreter lock
with the event loop, the prediction batcher and the fairness views: under 32 users an explanation
took twice its time alone and the server used 1.25 of its 2 cores. In a child process the
explanation has its own interpreter and core, and the server's threads keep theirs.

:class:`ProcessPredictor` starts the child at once (it loads in the background), sends it one
request at a time over a socket pair and returns its answer;
:class:`~fairmoe.inputs.InputError` comes back as itself. The child checks that it loaded the same weights as the parent (a fingerprint of
the state dict), exits when the parent goes (end of its socket) and is restarted if it dies;
the request that was running gets a :class:`WorkerError` that says so. The socket carries Python
objects (multiprocessing pickles them) between this process and its own child only; weights are
read from the checkpoint's safetensors file by the child itself.

Light to import (torch is imported by the child and by :func:`fingerprint`): ``python -m app``
starts its children before its own heavy imports (:mod:`app.startup`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import queue
import socket
import subprocess
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["METHODS", "ProcessPredictor", "WorkerError", "fingerprint"]

METHODS = ("explain", "model_maps")  # what the child answers
START_TIMEOUT_S = 300.0  # importing torch and loading the model: seconds on a busy 2-core machine
CALL_TIMEOUT_S = 300.0  # an explanation of the shipped model takes about 0.1 s


class WorkerError(RuntimeError):
    """The child could not answer: it failed to start, stopped, or hung (it is restarted)."""


def fingerprint(model: torch.nn.Module) -> str:
    """sha256 over the state dict (names, dtypes, sizes and values), in name order."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{t.numel()}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _serve(conn: Any, checkpoint: str, threads: int) -> None:
    """The child: load the Predictor, say ready (with its fingerprint), answer until EOF."""
    import torch

    torch.set_num_threads(threads)
    try:
        from fairmoe.inference import Predictor

        predictor = Predictor(checkpoint)
        predictor.warm_up()
        ready: tuple[str, str] = ("ready", fingerprint(predictor.model))
    except Exception as e:  # the parent shows why the child could not start
        ready = ("failed", f"{type(e).__name__}: {e}")
    try:
        conn.send(ready)
        while ready[0] == "ready" and (request := conn.recv()) is not None:
            conn.send(_answer(predictor, *request))
    except (EOFError, OSError):  # the parent has gone
        return


def _answer(predictor: Any, method: str, args: tuple, kwargs: dict) -> tuple[str, Any]:
    from fairmoe.inputs import InputError

    try:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}")
        return ("ok", getattr(predictor, method)(*args, **kwargs))
    except InputError as e:
        return ("input_error", str(e))
    except Exception as e:
        traceback.print_exc()  # the server's log gets the child's traceback
        return ("error", f"{type(e).__name__}: {e}")


class _Child:
    """One child process and its end of the socket; one call at a time."""

    def __init__(self, checkpoint: str, threads: int, expected: str | None) -> None:
        self.checkpoint = checkpoint
        self.threads = threads
        self.expected = expected
        self.restarts = 0
        self._lock = threading.Lock()
        self._ready = False
        self._start()

    def _start(self) -> None:
        # A fresh interpreter (no fork of a threaded server with torch's thread pools; unlike
        # multiprocessing's spawn, it never re-imports the caller's main script).
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p
        )}  # fmt: skip
        cmd = [sys.executable, "-m", "fairmoe.worker", "--fd", str(theirs.fileno()),
               "--checkpoint", self.checkpoint, "--threads", str(self.threads)]  # fmt: skip
        self._proc: subprocess.Popen | None = subprocess.Popen(
            cmd, pass_fds=(theirs.fileno(),), env=env
        )
        theirs.close()
        self._conn = Connection(ours.detach())
        self._ready = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _receive(self, timeout: float, doing: str) -> tuple[str, Any]:
        try:
            if self._conn.poll(timeout):
                return self._conn.recv()
            problem = f"did not answer within {timeout:.0f} s while {doing}"
        except (EOFError, OSError):
            problem = f"stopped (exit code {self._wait(5)}) while {doing}"
        self._restart()
        raise WorkerError(f"The explanation process {problem}; it is restarting: try again.")

    def _wait(self, timeout: float) -> int | None:
        """The child's exit code, killing it if it has not exited within ``timeout``."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return self._proc.wait()

    def _stop(self, timeout: float = 0) -> None:
        """End the child (a new one starts with the next call)."""
        self._wait(timeout)
        self._conn.close()
        self._proc = None

    def _restart(self) -> None:
        self._stop()
        self.restarts += 1
        self._start()

    def _await_ready(self) -> None:
        kind, value = self._receive(START_TIMEOUT_S, "loading the model")
        if kind != "ready":
            self._stop(5)
            raise WorkerError(f"The explanation process could not load the model: {value}")
        if self.expected is not None and value != self.expected:
            self._stop()  # not restarted: it would load the same file again
            raise WorkerError(
                "The explanation process loaded other weights than the server "
                f"({self.checkpoint} changed on disk?); restart the app."
            )
        self._ready = True

    @property
    def ready(self) -> bool:
        return self._proc is not None and self._ready

    def wait_ready(self) -> None:
        """Block until the process has loaded the model (WorkerError if it cannot)."""
        with self._lock:
            if self._proc is None:
                self._start()
            if not self._ready:
                self._await_ready()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``Predictor.<method>(*args, **kwargs)`` in the child, one call at a time."""
        with self._lock:
            if self._proc is None:
                self._start()
            if not self._ready:
                self._await_ready()
            try:
                self._conn.send((method, args, kwargs))
            except (OSError, ValueError):
                self._restart()
                raise WorkerError(
                    "The explanation process has gone; it is restarting: try again."
                ) from None
            kind, value = self._receive(CALL_TIMEOUT_S, f"computing {method}")
        if kind == "ok":
            return value
        if kind == "input_error":
            from fairmoe.inputs import InputError

            raise InputError(value)
        raise WorkerError(f"The explanation failed: {value}")

    def close(self) -> None:
        """Ask the child to exit and wait for it."""
        with self._lock:
            if self._proc is None:
                return
            if not self._ready:  # still loading: nothing to finish
                self._stop(0)
                return
            with contextlib.suppress(OSError, ValueError):  # the child has gone already
                self._conn.send(None)
            self._stop(5)


class ProcessPredictor:
    """:meth:`explain` and :meth:`model_maps` of ``Predictor(checkpoint)``, run in
    ``processes`` child processes with ``threads`` torch threads each; a call goes to a free
    child, or waits for one. ``expected`` is the parent model's :func:`fingerprint` (a child
    that loaded other weights is refused)."""

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        processes: int = 1,
        threads: int = 1,
        expected: str | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.children = [_Child(str(checkpoint), threads, expected) for _ in range(processes)]
        self._free: queue.SimpleQueue[_Child] = queue.SimpleQueue()
        for child in self.children:
            self._free.put(child)

    @property
    def pids(self) -> list[int]:
        """The running children's process ids."""
        return [pid for c in self.children if (pid := c.pid) is not None]

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self.children)

    @property
    def ready(self) -> int:
        """Children that have loaded the model and can take a call now."""
        return sum(c.ready for c in self.children)

    def start(self, expected: str | None = None) -> None:
        """Wait until every child (each started loading when this was made) has loaded the
        model, with the weights ``expected`` when given (WorkerError if one cannot, or loaded
        others): the server opens its port only after this, so that its first explanation
        does not pay for a child's start."""
        for child in self.children:
            if expected is not None:
                child.expected = expected
            child.wait_ready()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``Predictor.<method>(*args, **kwargs)`` in a free child."""
        child = self._free.get()
        try:
            return child.call(method, *args, **kwargs)
        finally:
            self._free.put(child)

    def explain(self, scan: Any, note: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.call("explain", scan, note, **kwargs)

    def model_maps(self, scan: Any, **kwargs: Any) -> dict[str, Any]:
        return self.call("model_maps", scan, **kwargs)

    def close(self) -> None:
        """Ask the children to exit and wait for them."""
        for child in self.children:
            child.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The explanation process of the app (internal).")
    p.add_argument("--fd", type=int, required=True, help="the socket to the parent")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    conn = Connection(args.fd)
    try:
        _serve(conn, args.checkpoint, args.threads)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group
        pass
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
