"""train.py's options: a flag per TrainConfig field, defaults read from TrainConfig, old names kept."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path

import pytest

from fairmoe import losses
from fairmoe.training import TrainConfig
from fairmoe.training.cli import add_config_arguments, config_from_args, field_comments

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import train  # noqa: E402  (the CLI under test)

REQUIRED = ["--data", "d", "--out", "o"]


def _flags() -> set[str]:
    return {s for a in train.build_parser()._actions for s in a.option_strings}


@pytest.mark.parametrize("cls", [TrainConfig, losses.LossConfig])
def test_every_field_has_a_flag_with_help(cls: type) -> None:
    flags, comments, hints = _flags(), field_comments(cls), typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            continue  # the nested LossConfig: its own fields are checked
        assert f"--{f.name.replace('_', '-')}" in flags, f.name
        assert comments[f.name], f"{cls.__name__}.{f.name} has no comment to be its help"


def test_no_arguments_give_the_config_defaults() -> None:
    assert train.train_config(train.build_parser().parse_args(REQUIRED), seed=0) == TrainConfig()
    bare = argparse.ArgumentParser()
    add_config_arguments(bare)
    assert config_from_args(bare.parse_args([])) == TrainConfig()


def test_old_flag_names_and_values() -> None:
    argv = [*REQUIRED, "--config", "small", "--pretrained", "p.json", "--lambda-balance", "0",
            "--fol-variant", "reference", "--seed", "1", "2", "--attribute", "all",
            "--model-overrides", "moe.capacity=3.4", "vision.pool_type=avg"]  # fmt: skip
    args = train.build_parser().parse_args(argv)
    assert args.seed == [1, 2]
    cfg = train.train_config(args, seed=2)
    assert (cfg.model, cfg.init, cfg.seed, cfg.attribute) == ("small", "p.json", 2, "all")
    assert cfg.loss == losses.LossConfig(lambda_balance=0.0, fol_variant="reference")
    assert cfg.model_overrides == (("moe.capacity", 3.4), ("vision.pool_type", "avg"))
    assert cfg.model_config().moe.capacity == 3.4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "moe"], "invalid choice"),
        (["--attribute", "age"], "invalid choice"),
        (["--lr", "fast"], "invalid float"),
        (["--model-overrides", "moe.capacity"], "expected KEY=VALUE"),
        (["--model-overrides", "moe.nope=1"], "unknown field 'nope'"),
    ],
)
def test_bad_values_are_usage_errors(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        train.main([*REQUIRED, *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_help_renders() -> None:
    text = train.build_parser().format_help()
    assert "--lambda-balance" in text and "(default: 0.01)" in text
