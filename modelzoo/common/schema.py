"""Declare-once parameter sections: a dataclass per YAML section, validated on construction.

Every key of every YAML section is a dataclass field declared with :func:`param` (type, default and
one line of doc), so the schema, the defaults, the validation and the generated reference page all
come from one place. Cerebras' model zoo silently ignored misspelled keys (``epsilon`` for ``eps``);
here an unknown key is an error that names the nearest valid one.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from typing import Any, Dict, Literal, Optional, Union

from modelzoo.common.errors import ParamsError

# The origins of a union: typing.Union, and on Python 3.10+ also types.UnionType (what ``int | None``
# evaluates to there; the sections here spell unions with typing.Optional/Union, which 3.8 reads).
_UNION_ORIGINS = (Union, getattr(types, "UnionType", Union))


def param(default: Any = dataclasses.MISSING, doc: str = "", *, required: bool = False) -> Any:
    """A schema field: ``default`` (copied if mutable) and a one-line ``doc`` for the reference page."""
    metadata = {"doc": doc}
    if required:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def nearest_key(key: str, valid: typing.Iterable[str]) -> Optional[str]:
    """The valid key closest in spelling to ``key`` (or None if nothing is close)."""
    matches = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_key_message(section: str, key: str, valid: typing.Iterable[str]) -> str:
    """``"section: unknown key 'epsilon' (did you mean 'eps'?)"``."""
    suggestion = nearest_key(key, valid)
    hint = f" (did you mean '{suggestion}'?)" if suggestion else f" (valid keys: {', '.join(sorted(valid))})"
    return f"{section}: unknown key '{key}'{hint}"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(tp))
    if origin in _UNION_ORIGINS:
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    if tp is type(None):
        return "null"
    if tp is Any:  # no __name__ before Python 3.10
        return "Any"
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> bool:
    """Whether a YAML-loaded ``value`` fits the annotation ``tp`` (ints are accepted as floats)."""
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in _UNION_ORIGINS:
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp) or (Any, Any)
        return isinstance(value, dict) and all(
            _matches(k, key_tp) and _matches(v, value_tp) for k, v in value.items()
        )
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def build(cls: type, values: Optional[Dict[str, Any]], section: str) -> Any:
    """Construct the dataclass ``cls`` from a YAML mapping, checking keys and types.

    Raises :class:`ParamsError` naming ``section`` and the offending key. The dataclass'
    ``__post_init__`` may add cross-field checks of its own (raising ParamsError too).
    """
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ParamsError(f"{section}: expected a mapping of keys, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in values:
        if key not in fields:
            raise ParamsError(unknown_key_message(section, str(key), fields))
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ParamsError(f"{section}: missing required key '{missing[0]}' ({fields[missing[0]].metadata.get('doc', '')})")
    kwargs = {}
    for key, value in values.items():
        tp = hints[key]
        if not _matches(value, tp):
            raise ParamsError(
                f"{section}.{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})"
            )
        kwargs[key] = float(value) if tp is float else value
    return cls(**kwargs)


def to_dict(instance: Any) -> Dict[str, Any]:
    """The section as a plain mapping (for writing the resolved params back to YAML)."""
    return dataclasses.asdict(instance)


def describe(cls: type, section: str, choices: Optional[Dict[str, typing.List[str]]] = None) -> str:
    """A Markdown table of the section's keys: name, type, default, doc (for the reference page).

    ``choices`` names the values of keys whose choices are registered at run time rather than typed.
    """
    hints = typing.get_type_hints(cls)
    rows = [f"### `{section}`", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "required"
        type_name = " | ".join(repr(value) for value in choices[f.name]) if f.name in (choices or {}) else _type_name(hints[f.name])
        type_cell = type_name.replace("|", r"\|")  # a bare | would split the cell
        rows.append(f"| `{f.name}` | {type_cell} | `{default}` | {f.metadata.get('doc', '')} |")
    return "\n".join(rows) + "\n"
