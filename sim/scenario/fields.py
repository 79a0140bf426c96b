"""The field reference of scenario files, written from the schema itself so it cannot drift.

``field_reference()`` walks ``Scenario`` and every table it holds and gives one Markdown
section per table: its docstring, then each field's type, default, bounds and description.
``sim schema --markdown`` prints it; ``docs/scenario-fields.md`` is that output, and a test
checks that the file is current.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, BeforeValidator
from pydantic_core import PydanticUndefined

from sim.scenario.base import LARGEST, SMALLEST
from sim.scenario.distributions import Constant, LogNormal, Uniform
from sim.scenario.schema import Scenario

DISTRIBUTIONS = {Constant, Uniform, LogNormal}
_BOUNDS = ((at.Gt, "gt", ">"), (at.Ge, "ge", ">="), (at.Lt, "lt", "<"), (at.Le, "le", "<="))

HEADER = f"""# Scenario fields

Every table a scenario file may hold, and every field of each: its type, its default
("required" when it has none) and its bounds. Generated from the schema (`sim schema
--markdown`, `make docs`); `docs/scenarios.md` explains how the pieces fit together.

Everywhere: unknown keys are errors, numbers are finite and 0 or between {SMALLEST:g} and
{LARGEST:g} in magnitude, and a field marked *distribution* takes a table
`{{ dist = "constant", value = ... }}`, `{{ dist = "uniform", low = ..., high = ... }}` or
`{{ dist = "lognormal", median = ..., sigma = ... }}`: each agent draws its own value.
"""


def _anchor(cls: type) -> str:
    return cls.__name__.lower()


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The tables (pydantic models) an annotation refers to, in order."""
    found: list[type[BaseModel]] = []
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in get_args(annotation):
        for cls in _models(arg):
            if cls not in found:
                found.append(cls)
    return found


def _type(annotation: Any) -> str:
    """A reader's name for a field's type."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        if any(isinstance(a, BeforeValidator) for a in args[1:]):  # _as_list: one or many
            return _type(args[0]).replace("array of", "table or array of")
        return _type(args[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if set(members) == DISTRIBUTIONS:
            return "*distribution*"
        return " or ".join(_type(m) for m in members)
    if origin is Literal:
        return "one of " + ", ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`"
                                     for a in args)
    if origin in (dict, list):
        item = args[-1]
        bounds = _bounds([], item)
        kind = "table" if origin is dict else "array"
        return f"{kind} of {_type(item)}" + (f" ({bounds})" if bounds else "")
    if origin is tuple:
        return "[" + ", ".join(_type(a) for a in args) + "]"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    names = {float: "number", int: "integer", str: "text", bool: "true/false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(metadata: list, annotation: Any) -> str:
    """``> 0, <= 1`` from a field's constraints (its own and its type's)."""
    items = list(metadata)
    if get_origin(annotation) is typing.Annotated:
        items += list(get_args(annotation)[1:])
    elif get_origin(annotation) in (typing.Union, types.UnionType):  # an optional bounded
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1 and get_origin(members[0]) is typing.Annotated:
            items += list(get_args(members[0])[1:])
    out = []
    for item in items:
        for kind, attr, sign in _BOUNDS:
            if isinstance(item, kind):
                out.append(f"{sign} {getattr(item, attr):g}")
        if isinstance(item, at.MinLen):
            out.append(f"at least {item.min_length} item{'s' * (item.min_length != 1)}")
        for inner in getattr(item, "metadata", []):  # a FieldInfo inside Annotated
            for kind, attr, sign in _BOUNDS:
                if isinstance(inner, kind):
                    out.append(f"{sign} {getattr(inner, attr):g}")
    return ", ".join(dict.fromkeys(out))


def _value(value: Any) -> str:
    """A default as it would be written in TOML."""
    if isinstance(value, BaseModel):
        fields = value.model_dump(exclude_defaults=False)
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in fields.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _default(info: Any) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
        if isinstance(value, BaseModel) and type(value) not in DISTRIBUTIONS:
            return "its defaults"
        return "empty" if value in ({}, []) else f"`{_value(value)}`"
    if info.default is PydanticUndefined:
        return "required"
    return "none" if info.default is None else f"`{_value(info.default)}`"


def _section(cls: type[BaseModel]) -> list[str]:
    doc = inspect.cleandoc(cls.__doc__ or "").replace("``", "`")
    lines = [f"## {cls.__name__}", "", doc, "",
             "| field | type | default | bounds | what |", "|---|---|---|---|---|"]
    for name, info in cls.model_fields.items():
        key = info.alias or name
        what = (info.description or "").replace("|", "\\|").replace("``", "`")
        lines.append(f"| `{key}` | {_type(info.annotation)} | {_default(info)} | "
                     f"{_bounds(info.metadata, info.annotation)} | {what} |")
    return [*lines, ""]


def field_reference() -> str:
    """Markdown: every table of a scenario file, ``Scenario`` first, in order of use."""
    order: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [Scenario]
    while todo:
        cls = todo.pop(0)
        if cls in order or cls in DISTRIBUTIONS:
            continue
        order.append(cls)
        for info in cls.model_fields.values():
            todo += [m for m in _models(info.annotation) if m not in order]
    out = [HEADER]
    for cls in order:
        out += _section(cls)
    return "\n".join(out).rstrip() + "\n"
