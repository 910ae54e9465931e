"""Training runs that measure the same numbers whatever ran before them in the process."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def deterministic_torch(seed: int = 0) -> Iterator[None]:
    """One torch thread, deterministic kernels and seeded global generators; all restored after.

    The thread count changes the order of float reductions, and a few hundred steps amplify
    that into different routers: a test that ran after one setting ``torch.set_num_threads(1)``
    (the app tests' conftest does) measured other figures than the same test alone.
    """
    threads = torch.get_num_threads()
    det, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
