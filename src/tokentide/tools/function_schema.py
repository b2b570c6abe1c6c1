"""A Python function described as a tool: the JSON Schema of its parameters from its
type hints, its description from its docstring, and the model's arguments checked (and
converted) against its signature before it runs.

Types understood: ``str``, ``int``, ``float``, ``bool``, ``list[T]``/``tuple[T, ...]``/
``set[T]``, ``dict[str, T]``, ``Literal[...]``, ``Enum`` subclasses (by value),
``T | None`` / ``Optional[T]``, unions, ``Any``.  A parameter without a hint, or with a
type outside that list, accepts any JSON value (``{}``) and is passed as the model
wrote it.  A parameter with a default is optional; ``*args`` and ``**kwargs`` are not
offered.

The docstring's first paragraph is the tool's description; parameter descriptions come
from a Google-style ``Args:`` section (``name (type): text``, continued on indented
lines) or a numpy-style ``Parameters`` section (``name : type`` then indented text).
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["BadArguments", "FunctionTool", "describe_function"]


class BadArguments(Exception):
    """The model's arguments do not fit the signature; the message is for the model."""


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    annotation: Any
    required: bool
    kind: inspect._ParameterKind


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """One function, ready to be offered and called."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    function: Callable[..., Any]
    params: tuple[_Param, ...]
    is_async: bool

    def bind(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """``(args, kwargs)`` for the call, converted; :class:`BadArguments` if the
        arguments are missing, unknown or of the wrong type."""
        known = {param.name for param in self.params}
        unknown = sorted(set(arguments) - known)
        missing = [p.name for p in self.params if p.required and p.name not in arguments]
        problems: list[str] = []
        if missing:
            problems.append(f"missing {_plural('argument', missing)} {_names(missing)}")
        if unknown:
            problems.append(f"unknown {_plural('argument', unknown)} {_names(unknown)}")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param in self.params:
            if param.name not in arguments:
                continue
            try:
                value = convert(arguments[param.name], param.annotation)
            except BadArguments as exc:
                problems.append(f"argument {param.name!r} {exc}")
                continue
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[param.name] = value
        if problems:
            takes = ", ".join(p.name + ("" if p.required else "?") for p in self.params)
            raise BadArguments(
                f"{self.name}: {'; '.join(problems)} (it takes: {takes or 'nothing'})"
            )
        return args, kwargs


def _plural(word: str, items: list[str]) -> str:
    return word + ("s" if len(items) > 1 else "")


def _names(items: list[str]) -> str:
    return ", ".join(repr(item) for item in items)


_SCALARS: Final[dict[Any, dict[str, Any]]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def schema_of(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of one annotation (``{}``: anything)."""
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [member.value for member in annotation]
        return {"enum": values, **_enum_type(values)}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return {"enum": list(args), **_enum_type(list(args))}
    if _is_union(annotation):
        present = [arg for arg in args if arg is not type(None)]
        if len(present) == 1:
            return schema_of(present[0])  # Optional[T]: a null is accepted, not advertised
        return {"anyOf": [schema_of(arg) for arg in present]}
    if origin in (list, set, frozenset, tuple) or annotation in (list, set, tuple):
        schema: dict[str, Any] = {"type": "array"}
        item_schema = schema_of(_item_type(annotation))
        if item_schema:
            schema["items"] = item_schema
        return schema
    if origin is dict or annotation is dict:
        schema = {"type": "object"}
        if len(args) == 2:
            value_schema = schema_of(args[1])
            if value_schema:
                schema["additionalProperties"] = value_schema
        return schema
    return {}


def _item_type(annotation: Any) -> Any:
    """The element type of a list/set/``tuple[T, ...]`` (``Any`` otherwise)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple:
        return args[0] if len(args) == 2 and args[1] is Ellipsis else Any
    return args[0] if len(args) == 1 else Any


def _enum_type(values: list[Any]) -> dict[str, Any]:
    kinds = {type(value) for value in values}
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind in _SCALARS:
            return {"type": _SCALARS[kind]["type"]}
    return {}


def convert(value: Any, annotation: Any) -> Any:
    """``value`` (as JSON gave it) as ``annotation`` wants it; raises
    :class:`BadArguments` with the end of a sentence (``must be an integer, got "3"``)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    if _is_union(annotation):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg)
            except BadArguments:
                continue
        raise BadArguments(f"has the wrong type ({_shown(value)})")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise BadArguments(f"must be true or false, got {_shown(value)}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise BadArguments(f"must be an integer, got {_shown(value)}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise BadArguments(f"must be a number, got {_shown(value)}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise BadArguments(f"must be a string, got {_shown(value)}")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in annotation)
            raise BadArguments(f"must be one of {allowed}, got {_shown(value)}") from None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        if value in args:
            return value
        raise BadArguments(f"must be one of {', '.join(map(repr, args))}, got {_shown(value)}")
    if origin in (list, set, frozenset, tuple) or annotation in (list, set, tuple):
        if not isinstance(value, list):
            raise BadArguments(f"must be a list, got {_shown(value)}")
        item = _item_type(annotation)
        items = [convert(element, item) for element in value]
        container = origin or annotation
        return items if container is list else container(items)
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise BadArguments(f"must be an object, got {_shown(value)}")
        if len(args) == 2:
            return {key: convert(item, args[1]) for key, item in value.items()}
        return value
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


# -- docstrings ----------------------------------------------------------------------

_GOOGLE_HEADERS: Final = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:\s*$")
_GOOGLE_LINE: Final = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_LINE: Final = re.compile(r"^(\w+)\s*(?::.*)?$")
_SECTION: Final = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """``(description, {parameter: description})`` of a cleaned docstring."""
    lines = doc.splitlines()
    description: list[str] = []
    for line in lines:
        if not line.strip():
            if description:
                break
            continue
        if _GOOGLE_HEADERS.match(line.strip()) or _SECTION.match(line.strip()):
            break
        if line.strip() == "Parameters":
            break
        description.append(line.strip())
    params: dict[str, str] = {}
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _GOOGLE_HEADERS.match(stripped):
            params.update(_google(lines[index + 1 :]))
        elif (
            stripped in ("Parameters", "Arguments")
            and index + 1 < len(lines)
            and set(lines[index + 1].strip()) == {"-"}
        ):
            params.update(_numpy(lines[index + 2 :]))
    return " ".join(description), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    base: int | None = None
    current: str | None = None
    for line in lines:
        if not line.strip():
            continue
        indent = _indent(line)
        if base is None:
            base = indent
            if base == 0:
                break
        if indent < base:
            break
        match = _GOOGLE_LINE.match(line.strip())
        if indent == base and match:
            current = match.group(1).lstrip("*")
            params[current] = match.group(2).strip()
        elif indent > base and current is not None:
            params[current] = (params[current] + " " + line.strip()).strip()
        else:
            break
    return params


def _numpy(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    current: str | None = None
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        next_line = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if _indent(line) == 0:
            if next_line and set(next_line) == {"-"}:
                break  # the next section
            match = _NUMPY_LINE.match(line.strip())
            if not match:
                break
            current = match.group(1)
            params[current] = ""
        elif current is not None:
            params[current] = (params[current] + " " + line.strip()).strip()
    return params


# -- the whole function --------------------------------------------------------------


def describe_function(name: str, function: Callable[..., Any]) -> FunctionTool:
    """The tool for ``function``; hints that cannot be resolved count as absent."""
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # a forward reference to something undefined
        hints = {}
    description, param_docs = parse_docstring(inspect.getdoc(function) or "")
    properties: dict[str, Any] = {}
    required: list[str] = []
    params: list[_Param] = []
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, inspect.Parameter.empty)
        schema = {} if annotation is inspect.Parameter.empty else schema_of(annotation)
        if param_docs.get(param.name):
            schema["description"] = param_docs[param.name]
        if param.default is not inspect.Parameter.empty and _jsonable(param.default):
            default = param.default.value if isinstance(param.default, enum.Enum) else param.default
            schema["default"] = default
        properties[param.name] = schema
        is_required = param.default is inspect.Parameter.empty
        if is_required:
            required.append(param.name)
        params.append(_Param(param.name, annotation, is_required, param.kind))
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return FunctionTool(
        name=name,
        description=description,
        parameters=parameters,
        function=function,
        params=tuple(params),
        is_async=inspect.iscoroutinefunction(function),
    )


def _jsonable(value: Any) -> bool:
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_jsonable(item) for item in value)
    return False
