"""The explanation half of :class:`fairmoe.inference.Predictor`: Captum attributions per image
expert, over the note's tokens and over the whole model, for one assessable scan.

A mixin, so that the Predictor stays one object with one loaded model; the attribution maths is in
:mod:`fairmoe.explain`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fairmoe.data.fairvlmed import normalize_scan
from fairmoe.explain import (
    attribute_experts,
    attribute_note,
    attribute_whole_model,
    occlusion_map,
)
from fairmoe.wording import is_refused

if TYPE_CHECKING:
    from fairmoe.inputs import Prepared, ScanInput

__all__ = ["EXPLAIN_STEPS", "Explaining"]

# Integrated-Gradients steps of an explanation: the whole-model map's, and the most the expert
# maps take (they stop earlier once complete: 4 steps on every shipped example). The expert maps
# converge fast (Gauss-Legendre): at 8 steps the worst completeness gap on the shipped examples
# was 1.5% of the score change and the maps within 1.3% of their colour scale of the 64-step
# maps (benchmarks/bench_explain.py); 16 steps cost twice as much for no visible change.
EXPLAIN_STEPS = 8


class Explaining:
    """``explain`` and ``model_maps`` of the Predictor (which provides ``prepare``,
    ``predict_prepared``, ``_assess``, ``_tokens``, ``model``, ``prompts``, ``temperature``,
    ``device``)."""

    def explain(
        self,
        scan: ScanInput | Any,
        note: str | None = None,
        *,
        n_steps: int = EXPLAIN_STEPS,
        model_maps: bool = True,
        edited: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """``predict`` plus Captum attributions per image expert and over the note's tokens.

        ``n_steps`` IG steps for the whole-model map, at most that many for the expert maps
        (as few as their completeness allows: ``fairmoe.explain.attribute_experts``); the note's
        tokens are attributed by leaving each out. With ``model_maps``, ``attributions`` also
        holds :meth:`model_maps`' ``whole_model`` and ``occlusion``. ``edited``: see
        :meth:`prepare`.

        A scan that is not assessable is answered with the refusal (``assessable``, ``decision:
        None``) and ``attributions: None``, ``note_attributions: None``: no map of a scan the
        model cannot read is drawn, and none is computed.
        """
        item = self.prepare(scan, note, edited=edited)
        result = self.predict_prepared([item])[0]
        if is_refused(result["assessable"]):
            result["attributions"] = result["note_attributions"] = None
            return result
        result["attributions"], result["note_attributions"] = self._attributions(
            item, n_steps=n_steps, model_maps=model_maps
        )
        return result

    def _attributions(
        self, item: Prepared, *, n_steps: int, model_maps: bool
    ) -> tuple[dict[str, Any], list[tuple[str, float]]]:
        """(expert attributions, with the model maps when asked; note token attributions)."""
        x = normalize_scan(item.pixels.unsqueeze(0)).to(self.device)
        kw = {"prompts": self.prompts, "temperature": self.temperature}
        att = attribute_experts(self.model, x, **kw, n_steps=n_steps)
        if model_maps:
            att.update(self._model_maps(x, n_steps))
        tokens = self._tokens(item.note) if item.note else None
        notes = attribute_note(self.model, x, tokens) if tokens is not None else []
        return att, notes

    def model_maps(
        self,
        scan: ScanInput | Any,
        *,
        n_steps: int = EXPLAIN_STEPS,
        edited: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Where the model as a whole looks: ``whole_model`` (IG over the pixels, summed per
        patch) and ``occlusion`` (log-odds change when each patch is masked; both carry the
        scan's calibrated ``logit``), with the scan's ``assessable`` verdict. The note plays no
        part: the decision is the scan's alone.

        A scan that is not assessable gets ``whole_model: None`` and ``occlusion: None``, and
        neither is computed. ``edited``: see :meth:`prepare`."""
        item = self.prepare(scan, edited=edited)
        with torch.inference_mode():
            assessed = self._assess([item], item.pixels.unsqueeze(0))[0]
        if is_refused(assessed):
            return {"assessable": assessed, "whole_model": None, "occlusion": None}
        x = normalize_scan(item.pixels.unsqueeze(0)).to(self.device)
        return {"assessable": assessed, **self._model_maps(x, n_steps)}

    def _model_maps(self, x: torch.Tensor, n_steps: int) -> dict[str, Any]:
        kw = {"prompts": self.prompts, "temperature": self.temperature}
        return {
            "whole_model": attribute_whole_model(self.model, x, **kw, n_steps=n_steps),
            "occlusion": occlusion_map(self.model, x, **kw),
        }
