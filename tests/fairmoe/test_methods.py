"""The method registry decides what each model contains and what its training reads."""

from __future__ import annotations

import pytest

from fairmoe.methods import METHODS, method_spec
from fairmoe.model import FeatureMoE, TokenMoE, create_model


@pytest.mark.parametrize("name", list(METHODS))
def test_model_has_exactly_the_layers_its_method_names(name: str) -> None:
    spec = METHODS[name]
    model = create_model("tiny", method=name, n_groups=2)
    kinds = {type(m) for m in model.modules()}
    assert (TokenMoE in kinds) == spec.token_moe
    assert (FeatureMoE in kinds) == spec.feature_moe
    assert spec.uses_attribute == (spec.distance or spec.gate_variance)


def test_registry_is_complete_and_refuses_unknown_names() -> None:
    assert len({m.label for m in METHODS.values()}) == len(METHODS)
    assert not METHODS["clip"].uses_attribute and METHODS["fairmoe"].has_moe
    with pytest.raises(ValueError, match="clip, fairclip, fairmoe"):
        method_spec("resnet")
