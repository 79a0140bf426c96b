"""Reading scenario files: TOML -> validated ``Scenario``, errors as one line each.

Every error names the file, the dotted field path and what was expected
(``file: field.path: what was expected, got what``); a misspelt key gets a "did you mean".
"""

from __future__ import annotations

import difflib
import functools
import tomllib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.errors import ScenarioError
from sim.scenario.base import short
from sim.scenario.references import check_references
from sim.scenario.schema import Scenario

# Largest scenario file read (bytes). Its text goes into every run's results, so a huge file
# (of comments, say) would make every results file as large. The largest shipped scenario,
# scenarios/history/black_thursday.toml, is about 15 kB: the cap leaves some 65 times that.
MAX_SCENARIO_BYTES = 1_000_000


def _field_path(loc: tuple, data: Any) -> str:
    """Dotted path of a pydantic error location, dropping union tags absent from the data."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            parts.append(f"[{part}]")
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not parts_has_tag(node, part):
            parts.append(part)  # a missing key: name it
            node = None
    return ".".join(parts).replace(".[", "[")


def parts_has_tag(node: dict, part: str) -> bool:
    """True when ``part`` is the tag of a discriminated union (``kind``/``dist`` value)."""
    return node.get("kind") == part or node.get("dist") == part


def _message(err: dict, data: Any) -> tuple[str, str]:
    loc = err["loc"]
    path = _field_path(loc, data)
    kind = err["type"]
    if kind == "extra_forbidden":
        return path, _unknown_key_message(loc, data)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "missing":
        typo = _misspelt(loc, data)
        if typo is not None:
            return _field_path(typo, data), _unknown_key_message(typo, data)
        return path, "required field is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = err["ctx"]["discriminator"].strip("'")
        if kind == "union_tag_not_found":
            return f"{path}.{tag}", "required field is missing"
        return f"{path}.{tag}", (f"unknown {tag} {err['ctx']['tag']!r} "
                                 f"(expected one of: {err['ctx']['expected_tags']})")
    given = err.get("input")
    if (kind == "model_attributes_type" and isinstance(given, int | float)
            and not isinstance(given, bool) and loc and loc[-1] in _distribution_fields()):
        return path, (f"a distribution table, e.g. {{ dist = \"constant\", value = {given!r} }}"
                      f" (or uniform / lognormal: each agent draws its own), got {given!r}")
    if kind not in ("model_type", "dict_type") and not isinstance(given, dict | list):
        msg = f"{msg[0].lower()}{msg[1:]}, got {short(given)}"
    else:
        msg = f"{msg[0].lower()}{msg[1:]}"
    return path, msg


@functools.cache
def _distribution_fields() -> frozenset[str]:
    """Names of the fields, in any table, that take a distribution (``{ dist = ... }``)."""
    names, seen, todo = set(), set(), [Scenario]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for name, info in cls.model_fields.items():
            refs = _tables(info.annotation)
            if {"Constant", "Uniform", "LogNormal"} <= {r.__name__ for r in refs}:
                names.add(name)
            todo += refs
    return frozenset(names)


def _tables(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation refers to."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _tables(arg)]


def _misspelt(loc: tuple, data: Any) -> tuple | None:
    """Location of an unknown key next to the missing key at ``loc`` that looks like it."""
    node = data
    for part in loc[:-1]:
        if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)):
            node = node[part]
    if not isinstance(node, dict):
        return None
    allowed = set(_allowed_keys(loc[:-1], data))
    if not allowed:
        return None
    unknown = [k for k in node if k not in allowed]
    close = difflib.get_close_matches(str(loc[-1]), unknown, n=1)
    return (*loc[:-1], close[0]) if close else None


def _unknown_key_message(loc: tuple, data: Any) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(loc[:-1], data)
    hint = ""
    if allowed:
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = (
            f" (did you mean '{close[0]}'?)"
            if close
            else f" (expected one of: {', '.join(sorted(allowed))})"
        )
    return f"unknown key '{key}'{hint}"


def _allowed_keys(parent_loc: tuple, data: Any) -> list[str]:
    """Keys the schema allows at ``parent_loc``, found by walking the JSON schema with the data."""
    root = Scenario.model_json_schema()
    defs = root.get("$defs", {})

    def resolve(node: dict, value: Any) -> dict:
        while True:
            if "$ref" in node:
                node = defs[node["$ref"].rsplit("/", 1)[-1]]
            elif "oneOf" in node or "anyOf" in node:
                options = node.get("oneOf") or node.get("anyOf")
                tag = node.get("discriminator", {}).get("propertyName")
                chosen = None
                for opt in options:
                    opt_r = resolve(opt, value)
                    props = opt_r.get("properties", {})
                    if opt_r.get("type") == "null":
                        continue
                    if tag and isinstance(value, dict):
                        if props.get(tag, {}).get("const") == value.get(tag):
                            chosen = opt_r
                            break
                    elif isinstance(value, dict) and opt_r.get("type") == "object":
                        chosen = opt_r
                        break
                    elif isinstance(value, list) and opt_r.get("type") == "array":
                        chosen = opt_r
                        break
                if chosen is None:
                    return {}
                node = chosen
            else:
                return node

    node = resolve(root, data)
    value = data
    for part in parent_loc:
        if isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
            node = resolve(node.get("items", {}), value)
            continue
        if not isinstance(value, dict) or part not in value:
            continue  # a union tag in the location
        value = value[part]
        props = node.get("properties", {})
        if part in props:
            node = resolve(props[part], value)
        elif isinstance(node.get("additionalProperties"), dict):
            node = resolve(node["additionalProperties"], value)
        else:
            return []
    return list(node.get("properties", {}))


MAX_DEPTH = 16  # tables and arrays inside each other; the schema's deepest path has 7


def _too_deep(value: Any, depth: int = 0) -> str | None:
    """The dotted path where ``value`` nests deeper than ``MAX_DEPTH``, else None."""
    if depth > MAX_DEPTH:
        return ""
    items = value.items() if isinstance(value, dict) else (
        ((f"[{k}]", v) for k, v in enumerate(value)) if isinstance(value, list) else ())
    for key, item in items:
        below = _too_deep(item, depth + 1)
        if below is not None:
            return f"{key}.{below}".rstrip(".").replace(".[", "[")
    return None


def parse_scenario(data: dict, *, source: str = "<scenario>", text: str = "") -> Scenario:
    """Validate a scenario mapping; raise ``ScenarioError`` naming the first bad field."""
    where = _too_deep(data)
    if where is not None:
        raise ScenarioError(source, where, f"tables and arrays nest more than {MAX_DEPTH} "
                            "deep here; no scenario field does")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        path, msg = _message(errors[0], data)
        raise ScenarioError(source, path, msg) from None
    scenario._source = source
    scenario._text = text
    scenario._data = data
    check_references(scenario)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (TOML) of at most ``MAX_SCENARIO_BYTES``.

    Every run stores the file's text in its results (``scenario_text``), so a file is
    refused, before it is read, when it is larger than the cap.
    """
    path = Path(path)
    source = str(path)
    if path.exists() and not path.is_file():  # a folder, a device, a pipe: never read
        raise ScenarioError(source, "", "cannot read file (not a regular file)")
    try:
        size = path.stat().st_size
        if size > MAX_SCENARIO_BYTES:
            raise ScenarioError(source, "", f"file is {size / 1e6:,.1f} MB; scenario files are "
                                f"limited to {MAX_SCENARIO_BYTES / 1e6:g} MB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(source, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, "", f"cannot read file ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "", f"invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ScenarioError(source, "", f"invalid TOML: arrays or tables nest too deep "
                            f"(no scenario field nests more than {MAX_DEPTH})") from None
    return parse_scenario(data, source=source, text=text)
