"""Fair-MoE Studio's Gradio app: UI only; all model and metric work is done by ``fairmoe``.

:mod:`app.ui` builds the demo from one module per tab in :mod:`app.tabs` (layout and event
wiring), whose handlers are in :mod:`app.callbacks`, views in :mod:`app.views` and figures in
:mod:`app.plots`; :mod:`app.runtime` is what is loaded once (each run a :mod:`app.runinfo`, grouped
by the fair test's scenarios in :mod:`app.scenarios`), :mod:`app.events` how events queue.

Importing the package sets the offline environment (no analytics, no hub look-ups) before gradio is
imported by any submodule.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__all__ = ["build_demo", "launch_kwargs", "load_runtime"]


def __getattr__(name: str):  # lazy: `import app` stays cheap until the UI is needed
    if name in ("build_demo", "launch_kwargs"):
        from app import ui

        return getattr(ui, name)
    if name == "load_runtime":
        from app.runtime import load_runtime

        return load_runtime
    raise AttributeError(f"module 'app' has no attribute {name!r}")
