"""pydantic validation errors of a configuration file as one line a person can act on.

Shared by the policy (``models/policy/config.py``), training (``models/training.py``) and
vintage (``models/vintages.py``) configurations: each problem names its key path
(``risk_grades[1].max_loss_rate``), what is wrong and what is allowed (the keys of the
mapping, the range of a number), read from the configuration's JSON Schema. Unknown and
missing keys of one mapping are named together; after ``MAX_ERRORS_SHOWN`` problems the
rest are counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

MAX_ERRORS_SHOWN = 3
UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")
MISSING_KEY = ("missing", "missing_argument")
RANGE = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")
# A message of its own for a configuration's special cases (e.g. the policy's formula):
# (error, key path) -> text, or None for the generic message.
Special = Callable[[Mapping[str, Any], list], str | None]


def one_line(
    exc: ValidationError,
    schema_of: Callable[[str | None], dict[str, Any]],
    root: str = "config",
    tags: Sequence[str] = (),
    special: Special | None = None,
) -> str:
    """``exc`` as one line. ``schema_of(tag)``: the JSON Schema of the file (of the union
    member ``tag`` when the configuration is a tagged union, whose ``tags`` are no keys);
    ``root``: how the top level is named."""
    problems: list[str | tuple] = []
    keys: dict[tuple, list[str]] = {}
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        tag = loc.pop(0) if loc and loc[0] in tags else None
        if error["type"] in UNKNOWN_KEY + MISSING_KEY and loc:
            group = ("unknown" if error["type"] in UNKNOWN_KEY else "missing", tuple(loc[:-1]), tag)
            if group not in keys:
                keys[group] = []
                problems.append(group)
            keys[group].append(str(loc[-1]))
            continue
        text = special(error, loc) if special else None
        problems.append(text or _describe(error, loc, schema_of(tag), root))
    texts = []
    for problem in problems:
        if isinstance(problem, str):
            texts.append(problem)
            continue
        kind, parent, tag = problem
        where = key_path(list(parent)) or root
        if kind == "missing":
            texts.append(f"{where}: missing key(s) {keys[problem]}")
        else:
            allowed = sorted(schema_at(schema_of(tag), list(parent)).get("properties", {}))
            texts.append(f"{where}: unknown key(s) {keys[problem]}; allowed: {', '.join(allowed)}")
    more = len(texts) - MAX_ERRORS_SHOWN
    return "; ".join(texts[:MAX_ERRORS_SHOWN]) + (f" (and {more} more)" if more > 0 else "")


def _describe(error: Mapping[str, Any], loc: list, schema: dict[str, Any], root: str) -> str:
    kind, value = error["type"], error.get("input")
    where = key_path(loc)
    if kind in RANGE:
        bounds = _number_schema(schema_at(schema, loc))
        low = bounds.get("minimum", bounds.get("exclusiveMinimum", -math.inf))
        high = bounds.get("maximum", bounds.get("exclusiveMaximum", math.inf))
        opening = "(" if "exclusiveMinimum" in bounds else "["
        closing = ")" if "exclusiveMaximum" in bounds else "]"
        return f"{where}: {value} is outside {opening}{low}, {high}{closing}"
    if kind in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float"):
        whole = "a whole number" if kind.startswith("int") else "a number"
        return f"{where}: expected {whole}, got {value!r}"
    if kind in ("bool_type", "bool_parsing"):
        return f"{where}: expected true or false, got {value!r}"
    if kind == "string_type":
        return f"{where}: expected a string, got {value!r}"
    if kind in ("list_type", "tuple_type"):
        return f"{where}: expected a list, got {value!r}"
    if kind in ("dict_type", "model_type", "dataclass_type", "model_attributes_type"):
        return f"{where or root}: expected a mapping, got {value!r}"
    if kind in ("literal_error", "enum"):
        return f"{where}: expected {error.get('ctx', {}).get('expected', 'an allowed value')}, got {value!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def key_path(loc: list) -> str:
    """``['risk_grades', 1, 'grade']`` -> ``risk_grades[1].grade``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def schema_at(schema: dict[str, Any], loc: list) -> dict[str, Any]:
    """The sub-schema of a key path (empty when unknown)."""
    defs = schema.get("$defs", {})
    node: dict[str, Any] = schema
    for part in loc:
        node = _resolve(node, defs, part)
        if not node:
            return {}
    return _resolve(node, defs, None)


def _resolve(node: dict[str, Any], defs: dict[str, Any], part: Any) -> dict[str, Any]:
    if "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    if part is None:
        return node
    for option in node.get("oneOf", node.get("anyOf", [])):
        found = _resolve(option, defs, part)
        if found:
            return found
    if isinstance(part, int) and "items" in node:
        return node["items"]
    if part in node.get("properties", {}):
        return node["properties"][part]
    if isinstance(node.get("additionalProperties"), dict):
        return node["additionalProperties"]
    return {}


def _number_schema(node: dict[str, Any]) -> dict[str, Any]:
    for option in node.get("anyOf", []):
        if option.get("type") in ("number", "integer"):
            return option
    return node
