"""FairMoECLIP: forward/backward per method, encoders against open_clip's own, configs, weights."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from fairmoe.calibration import glaucoma_probability
from fairmoe.checkpoint import RunMetadata, save_checkpoint
from fairmoe.methods import METHODS
from fairmoe.model import (
    FairMoECLIP,
    FeatureRouting,
    TokenMoE,
    TokenRouting,
    create_model,
    get_config,
    list_configs,
)
from fairmoe.schema import PROMPTS

NOTES = ["glaucoma with cup to disc ratio 0.8", "normal optic nerve, no glaucoma", "x", "y z"]


def _inputs(model: FairMoECLIP, n: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    size = model.config.vision.image_size
    images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return images, model.tokenizer()((NOTES * n)[:n])


def _tiny(method: str = "fairmoe", seed: int = 0, **overrides: object) -> FairMoECLIP:
    torch.manual_seed(seed)
    return create_model(get_config("tiny", **overrides), method=method, n_groups=3)


def test_presets_listed() -> None:
    assert list_configs() == ["tiny", "demo", "small", "vit-b-16", "vit-b-16-paper"]
    with pytest.raises(ValueError, match="tiny, demo, small, vit-b-16, vit-b-16-paper"):
        get_config("vit-l-14")


def test_config_overrides() -> None:
    cfg = get_config("tiny", embed_dim=32, moe={"top_k": 2}, **{"vision.pool_type": "avg"})
    assert (cfg.embed_dim, cfg.moe.top_k, cfg.moe.n_experts, cfg.vision.pool_type) == (
        32,
        2,
        10,
        "avg",
    )
    assert get_config("tiny").moe.top_k == 3  # presets untouched
    with pytest.raises(ValueError, match="unknown field 'widht'"):
        get_config("tiny", **{"vision.widht": 3})
    json.dumps(cfg.to_dict())  # checkpoint metadata is plain JSON


@pytest.mark.parametrize("method", METHODS)
def test_forward_backward(method: str) -> None:
    model = _tiny(method)
    out = model(*_inputs(model))
    assert out.image_features.shape == out.text_features.shape == (4, 64)
    torch.testing.assert_close(out.image_features.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(out.logit_scale, torch.tensor(1 / 0.07))
    expected_keys = (
        {"token_img", "token_txt", "feat_img", "feat_txt"} if method == "fairmoe" else set()
    )
    assert set(out.routing) == expected_keys
    logits = out.logit_scale * out.image_features @ out.text_features.T
    loss = logits.logsumexp(1).mean() - logits.diagonal().mean()
    if method == "fairmoe":  # a routing-dependent term, as the FOL adds
        loss = loss + sum(r.weights.var(0).sum() for r in out.routing.values())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), name
    if method == "fairmoe":
        for moe in (
            model.token_moe_img,
            model.token_moe_txt,
            model.feat_moe_img,
            model.feat_moe_txt,
        ):
            assert moe.router[0].weight.grad.abs().sum() > 0
            assert sum(float(e.c_fc.weight.grad.abs().sum()) for e in moe.experts) > 0


def test_bf16_autocast_forward_backward() -> None:
    """Training runs under autocast (bf16 on the GPU); the MoE dispatch must mix dtypes."""
    model = _tiny()
    images, tokens = _inputs(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, tokens)
        h = model.image_trunk(images)
        contrib, _ = model.image_expert_contributions(h)
        via_contrib, _ = model.image_head(h, contributions=contrib)
    loss = out.logit_scale * (out.image_features.float() * out.text_features.float()).sum()
    loss = loss + sum(r.weights.float().var(0).sum() for r in out.routing.values())
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    torch.testing.assert_close(via_contrib.float(), out.image_features.float(), atol=2e-2, rtol=0)


def test_routing_types_and_shapes() -> None:
    model = _tiny()
    out = model(*_inputs(model))
    assert isinstance(out.routing["token_img"], TokenRouting)
    assert isinstance(out.routing["feat_txt"], FeatureRouting)
    assert out.routing["token_img"].weights.shape == (4, 17, 10)  # 4x4 patches + CLS
    assert out.routing["token_txt"].weights.shape == (4, 77, 10)
    assert out.routing["feat_img"].weights.shape == (4, 3)
    cap = model.token_moe_img.capacity(17)
    assert int(out.routing["token_img"].kept.sum(1).max()) <= cap


@pytest.mark.parametrize("method", ["clip", "fairmoe"])
@pytest.mark.parametrize("pool", ["tok", "avg"])
def test_head_of_trunk_equals_encode_image(method: str, pool: str) -> None:
    model = _tiny(method, **{"vision.pool_type": pool}).eval()
    images, _ = _inputs(model)
    features, routing = model.image_head(model.image_trunk(images))
    torch.testing.assert_close(features, model.encode_image(images), atol=0, rtol=0)
    if method == "fairmoe":
        contrib, _ = model.image_expert_contributions(model.image_trunk(images))
        via_contrib, _ = model.image_head(model.image_trunk(images), contributions=contrib)
        torch.testing.assert_close(via_contrib, features, atol=1e-6, rtol=0)
    else:
        with pytest.raises(ValueError, match="no token MoE"):
            model.image_expert_contributions(model.image_trunk(images))


@pytest.mark.parametrize("pool", ["tok", "avg"])
def test_plain_encoders_match_open_clip(pool: str) -> None:
    """Our explicit encoders reproduce open_clip's own forward (the oracle)."""
    model = _tiny("clip", **{"vision.pool_type": pool}).eval()
    images, tokens = _inputs(model)
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode_image(images), model.clip.encode_image(images, normalize=True)
        )
        torch.testing.assert_close(
            model.encode_text(tokens), model.clip.encode_text(tokens, normalize=True)
        )


class _OutputOnly(nn.Module):
    """open_clip's block expects the MLP to return a tensor; drop the routing."""

    def __init__(self, moe: TokenMoE, real: torch.Tensor | None = None) -> None:
        super().__init__()
        self.moe = moe
        self.real = real  # the text's non-padding tokens: only they are routed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.moe(x, real=self.real)[0]


def test_fairmoe_encoders_match_open_clip_with_moe_swapped_in() -> None:
    model = _tiny("fairmoe").eval()
    images, tokens = _inputs(model)
    with torch.no_grad():
        ours_img, ours_txt = model.encode_image(images), model.encode_text(tokens)
        img_blocks, txt_blocks = (
            model.clip.visual.transformer.resblocks,
            model.clip.transformer.resblocks,
        )
        img_blocks[-1].mlp = _OutputOnly(img_blocks[-1].mlp)
        txt_blocks[-1].mlp = _OutputOnly(txt_blocks[-1].mlp, real=tokens != 0)
        ref_img = model.feat_moe_img(model.clip.encode_image(images))[0]
        ref_txt = model.feat_moe_txt(model.clip.encode_text(tokens))[0]
    torch.testing.assert_close(ours_img, torch.nn.functional.normalize(ref_img, dim=-1))
    torch.testing.assert_close(ours_txt, torch.nn.functional.normalize(ref_txt, dim=-1))


def test_text_head_of_trunk_and_token_shape_check() -> None:
    model = _tiny().eval()
    _, tokens = _inputs(model)
    h = model.text_trunk(tokens)
    torch.testing.assert_close(model.text_head(h, tokens)[0], model.encode_text(tokens))
    with pytest.raises(ValueError, match=r"\(B, 77\)"):
        model.encode_text(tokens[:, :10])


def test_experts_start_from_the_replaced_mlp() -> None:
    torch.manual_seed(0)
    plain = create_model("tiny", method="clip")
    torch.manual_seed(0)
    moe_model = create_model("tiny", method="fairmoe")
    mlp = plain.clip.visual.transformer.resblocks[-1].mlp
    for expert in moe_model.token_moe_img.experts:
        assert torch.equal(expert.c_fc.weight, mlp.c_fc.weight)
        assert torch.equal(expert.c_proj.weight, mlp.c_proj.weight)


def test_zero_shot_and_probability() -> None:
    model = _tiny().eval()
    images, _ = _inputs(model)
    with torch.no_grad():
        img = model.encode_image(images)
        prompts = model.encode_prompts()
    assert prompts.shape == (len(PROMPTS), 64)
    cos = model.zero_shot_logits(img, prompts)
    assert cos.shape == (4, 2)
    torch.testing.assert_close(
        cos, torch.nn.functional.cosine_similarity(img[:, None], prompts[None], dim=-1)
    )
    for temperature in (1.0, 0.05):
        p = glaucoma_probability(cos, temperature=temperature)
        torch.testing.assert_close(p, torch.sigmoid((cos[:, 1] - cos[:, 0]) / temperature))
    # a temperature keeps the decision at 0.5 unchanged
    assert torch.equal(
        glaucoma_probability(cos) >= 0.5, glaucoma_probability(cos, temperature=0.1) >= 0.5
    )


def test_tokenizer_offline_and_metadata() -> None:
    model = _tiny()
    tokens = model.tokenizer()(["A photo of glaucoma"])
    assert tokens.shape == (1, 77) and tokens.dtype == torch.long
    assert tokens[0, 0] == 49406 and 49407 in tokens[0].tolist()
    meta = model.metadata()
    assert meta["method"] == "fairmoe" and meta["n_groups"] == 3
    assert meta["config"]["moe"]["n_experts"] == 10


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        create_model("tiny", method="moe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_groups"):
        create_model("tiny", method="fairmoe", n_groups=0)


def test_feature_moe_experts_follow_n_groups() -> None:
    torch.manual_seed(0)
    model = create_model("tiny", method="fairmoe", n_groups=2)
    assert len(model.feat_moe_img.experts) == len(model.feat_moe_txt.experts) == 2


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_demo_size() -> None:
    torch.manual_seed(0)
    model = create_model("demo", method="clip")
    n = _n_params(model)
    assert 20e6 <= n <= 30e6, n
    assert n * 2 <= 64 * 2**20  # fp16 weights fit 64 MiB
    assert model.clip.visual.pool_type == "avg"
    assert len(model.clip.visual.transformer.resblocks) == 6


def test_vit_b_16_matches_open_clip_architecture() -> None:
    """Counted on the meta device (no memory); the oracle is open_clip's own ViT-B-16 config."""
    cfg = json.loads(
        (Path(open_clip.__file__).parent / "model_configs" / "ViT-B-16.json").read_text()
    )
    with torch.device("meta"):
        ours = create_model("vit-b-16", method="clip")
        ref = open_clip.CLIP(**cfg, quick_gelu=True)
        moe = create_model("vit-b-16", method="fairmoe")
        paper = create_model("vit-b-16-paper", method="fairmoe")
    assert _n_params(ours) == _n_params(ref) == 149_620_737
    assert {k: v.shape for k, v in ours.clip.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }
    assert isinstance(
        ours.clip.visual.transformer.resblocks[0].mlp.gelu, open_clip.transformer.QuickGELU
    )
    # ours: the experts in the first block, capacity factor 2; the paper's: the last, 0.8
    assert moe.image_moe_block == 0 and moe.token_moe_img.capacity(197) == 118
    assert moe.patch_experts_reach_output
    assert paper.image_moe_block == 11 and paper.token_moe_img.capacity(197) == 47
    assert not paper.patch_experts_reach_output


@pytest.mark.slow
def test_vit_b_16_builds_and_runs() -> None:
    torch.manual_seed(0)
    model = create_model("vit-b-16", method="fairmoe").eval()
    with torch.no_grad():
        out = model(*_inputs(model, n=1))
    assert out.image_features.shape == (1, 512)
    assert torch.isfinite(out.image_features).all()


# -- pretrained weights from local files ---------------------------------------------------------


def _weights_source() -> FairMoECLIP:
    torch.manual_seed(123)
    return create_model("tiny", method="clip")


def _check_loaded(
    src: FairMoECLIP, path: Path, *, saved_dtype: torch.dtype = torch.float32
) -> None:
    torch.manual_seed(0)
    model = create_model("tiny", method="fairmoe", init=path)
    loaded = model.clip.state_dict()
    for k, v in src.clip.state_dict().items():
        if ".resblocks.1.mlp." in k:  # the last block's MLP became the experts
            continue
        assert loaded[k].dtype == v.dtype
        assert torch.equal(loaded[k], v.to(saved_dtype).to(v.dtype)), k
    mlp = src.clip.visual.transformer.resblocks[-1].mlp
    for expert in model.token_moe_img.experts:
        assert torch.equal(expert.c_fc.weight, mlp.c_fc.weight.to(saved_dtype).float())


def test_pretrained_safetensors(tmp_path: Path) -> None:
    src = _weights_source()
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.clip.state_dict().items()}, str(path))
    _check_loaded(src, path)


def test_pretrained_openai_style_pickle(tmp_path: Path) -> None:
    """fp16, wrapped in model_state_dict with a DDP prefix and OpenAI's extra keys."""
    src = _weights_source()
    sd = {f"module.{k}": v.half() for k, v in src.clip.state_dict().items()}
    sd["module.input_resolution"] = torch.tensor(64)
    path = tmp_path / "w.pt"
    torch.save({"model_state_dict": sd, "epoch": 3}, path)
    _check_loaded(src, path, saved_dtype=torch.float16)


def test_pretrained_torchscript_archive(tmp_path: Path) -> None:
    src = _weights_source()
    path = tmp_path / "ViT-tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(src.clip), str(path))
        _check_loaded(src, path)


def test_pretrained_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        create_model("tiny", method="clip", init=tmp_path / "missing.pt")
    src = _weights_source()
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in src.clip.state_dict().items()}, str(path))
    with pytest.raises(ValueError, match="do not fit model config 'tiny'"):
        create_model(get_config("tiny", embed_dim=32), method="clip", init=path)
    bad = tmp_path / "obj.pt"
    torch.save({"state_dict": nn.Linear(2, 2)}, bad)  # a pickled module, not a state_dict
    with pytest.raises(ValueError, match="cannot read weights safely"):
        create_model("tiny", method="clip", init=bad)


def test_init_from_our_plain_clip_checkpoint(tmp_path: Path) -> None:
    src = _weights_source()
    meta = RunMetadata(method="clip", config=get_config("tiny").to_dict())
    path = save_checkpoint(src, tmp_path, "pre", metadata=meta)  # fp16, keys "clip.*"
    _check_loaded(src, path, saved_dtype=torch.float16)
    _check_loaded(src, tmp_path / "pre.safetensors", saved_dtype=torch.float16)
    moe = create_model("tiny", method="fairmoe")
    fair = save_checkpoint(moe, tmp_path, "fair", metadata=RunMetadata("fairmoe", meta.config))
    with pytest.raises(ValueError, match="plain CLIP checkpoint"):
        create_model("tiny", method="fairmoe", init=fair)
