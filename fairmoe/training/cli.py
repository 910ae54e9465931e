"""Command-line options built from ``TrainConfig``'s fields, so each default lives only there.

A field ``name`` becomes ``--name-with-dashes``; its type comes from the annotation (``Literal`` as
choices, ``X | None`` as ``X``, ``bool`` as ``--flag/--no-flag``), its help from the field's
comment. The nested ``LossConfig``'s fields get flags of their own (``--lambda-balance``).
What the types cannot say is in the tables below: older flag names, choices read from registries,
help groups, and the seeds (``--seed 0 1 2``: one run each).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
import types
import typing
from typing import Any, Literal

from fairmoe.model import list_configs
from fairmoe.schema import ATTRIBUTE_NAMES
from fairmoe.training.config import TrainConfig

__all__ = ["add_config_arguments", "config_from_args", "field_comments"]

_ALIASES = {"model": ("--config",), "init": ("--pretrained",)}  # flags older than the fields
_CHOICES = {"attribute": lambda: [*ATTRIBUTE_NAMES, "all"], "model": list_configs}
_MANY = {"seed"}  # fields the CLI takes several values of, one run per value
_GROUPS = {  # help groups; a field not listed here is in "model and method"
    "limit": "data",
    **dict.fromkeys(
        ("epochs", "batch_size", "lr", "weight_decay", "warmup_fraction"), "optimisation"
    ),
    **dict.fromkeys(("grad_clip_norm", "max_logit_scale", "seed", "select_on"), "optimisation"),
    **dict.fromkeys(("tag", "eval_batch_size", "ood_quantile"), "run"),
}
_DEFAULT_GROUP = "model and method"
_NESTED_GROUP = "loss"  # the nested LossConfig's fields


def field_comments(cls: type) -> dict[str, str]:
    """Each field's comments (the block just above it and those on its lines), joined."""
    src = textwrap.dedent(inspect.getsource(cls))
    comment_at = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(src).readline)
        if tok.type == tokenize.COMMENT
    }
    lines = src.splitlines()
    out = {}
    for node in ast.parse(src).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, row = [], node.lineno - 1
        while row >= 1 and lines[row - 1].lstrip().startswith("#"):
            above.insert(0, comment_at[row])
            row -= 1
        beside = [comment_at[r] for r in range(node.lineno, node.end_lineno + 1) if r in comment_at]
        out[node.target.id] = " ".join(above + beside)
    return out


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE a Python literal (``3.4``, ``True``) or else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (e.g. moe.capacity=3.4), got {text!r}"
        )
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _options(name: str, hint: Any, default: Any) -> dict[str, Any]:
    """argparse keywords for a field of type ``hint``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"field {name!r}: cannot make a flag for {hint}")
        hint = inner[0]
    if name in _CHOICES:
        return {"choices": list(_CHOICES[name]())}
    if typing.get_origin(hint) is Literal:
        return {"choices": list(typing.get_args(hint))}
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is tuple:  # (key, value) pairs: model overrides
        return {"type": _key_value, "nargs": "*", "metavar": "KEY=VALUE"}
    if hint in (int, float, str):
        return {"type": hint, "nargs": "+"} if name in _MANY else {"type": hint}
    raise TypeError(f"field {name!r}: cannot make a flag for {hint}")


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def add_config_arguments(
    parser: argparse.ArgumentParser,
    groups: dict[str, argparse._ArgumentGroup] | None = None,
    cls: type = TrainConfig,
) -> dict[str, argparse._ArgumentGroup]:
    """Add a flag for every field of ``cls`` (and of its nested configs) to ``parser``.

    ``groups`` are help groups by title (created here when missing); returned with the new ones.
    """
    groups = dict(groups or {})
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    for f in dataclasses.fields(cls):
        hint, default = hints[f.name], _default(f)
        if dataclasses.is_dataclass(hint):
            if _NESTED_GROUP not in groups:
                groups[_NESTED_GROUP] = parser.add_argument_group(_NESTED_GROUP)
            add_config_arguments(parser, {_DEFAULT_GROUP: groups[_NESTED_GROUP]}, hint)
            continue
        title = _GROUPS.get(f.name, _DEFAULT_GROUP) if cls is TrainConfig else _DEFAULT_GROUP
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        options = _options(f.name, hint, default)
        if options.get("nargs") in ("+", "*"):
            default = list(default) if options["nargs"] == "*" else [default]
        text = comments.get(f.name, "").replace("%", "%%")  # argparse %-formats help
        if f.name in _MANY:
            text = f"one run each; {text}"
        groups[title].add_argument(
            f"--{f.name.replace('_', '-')}",
            *_ALIASES.get(f.name, ()),
            dest=f.name,
            default=default,
            help=f"{text} (default: %(default)s)".lstrip(),
            **options,
        )
    return groups


def config_from_args(args: argparse.Namespace, cls: type = TrainConfig, **overrides: Any) -> Any:
    """The config the parsed flags describe; ``overrides`` win (e.g. ``seed=`` one of the seeds).

    A field given several values (``seed``) without an override takes the first.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif dataclasses.is_dataclass(hints[f.name]):
            values[f.name] = config_from_args(args, hints[f.name])
        else:
            value = getattr(args, f.name)
            if isinstance(value, list):
                value = value[0] if f.name in _MANY else tuple(value)
            values[f.name] = value
    return cls(**values)
