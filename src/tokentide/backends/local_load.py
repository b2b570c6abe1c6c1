"""Loading a predictor for ``api = "local"``: the ``target`` a profile names, and the
arguments its signature asks for.  See :mod:`tokentide.backends.local`.

A file target is imported as a private module (a unique name in ``sys.modules``, so two
files called ``predictor.py`` do not collide).  The import runs isolated
(:mod:`tokentide.backends.local_isolation`): what it prints goes to the debug log, and
an exception, ``sys.exit()`` or ``KeyboardInterrupt`` during it is a
:class:`~tokentide.errors.ConfigError`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import cast

from tokentide.backends.local_isolation import isolated
from tokentide.errors import ConfigError, excerpt

__all__ = ["ARGUMENTS", "TARGET_HINT", "load_target", "parameters"]


ARGUMENTS = ("messages", "prompt", "system", "max_tokens", "temperature", "seed", "request")
"""The keyword arguments a predictor may ask for, by parameter name."""

TARGET_HINT = (
    'Write target = "path/to/file.py:function" (relative to the current directory, '
    'or absolute) or target = "package.module:function".'
)


# -- loading the target ------------------------------------------------------------------


def load_target(target: str) -> Callable[..., object]:
    """The callable ``target`` names.  Raises :class:`ConfigError` if it cannot be loaded."""
    path_or_module, colon, attribute = target.rpartition(":")
    if not colon or not path_or_module or not attribute:
        raise ConfigError(f"target {target!r} does not name a function.", hint=TARGET_HINT)
    if path_or_module.endswith(".py") or "/" in path_or_module or "\\" in path_or_module:
        module = _load_file(Path(path_or_module).expanduser(), target)
    else:
        module = _import_module(path_or_module, target)
    obj: object = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = sorted(n for n in dir(module) if not n.startswith("_"))
            raise ConfigError(
                f"target {target!r}: {path_or_module} has no {attribute!r}.",
                hint=f"It defines: {', '.join(names) or 'nothing public'}.",
            ) from None
    if not callable(obj):
        raise ConfigError(
            f"target {target!r}: {attribute!r} is a {type(obj).__name__}, not a function.",
            hint=TARGET_HINT,
        )
    return cast(Callable[..., object], obj)


def _load_file(path: Path, target: str) -> ModuleType:
    if not path.is_file():
        raise ConfigError(
            f"target {target!r}: no file {str(path)!r} (looked in {Path.cwd()}).",
            hint="Relative paths are relative to the current directory; or use an absolute path.",
        )
    resolved = path.resolve()
    # A private, unique module name: two files called predictor.py do not collide, and
    # the module is in sys.modules (dataclasses, pickle and inspect.getmodule need it).
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:12]
    name = f"_tokentide_local_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(f"target {target!r}: {str(path)!r} cannot be loaded as Python.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with isolated(target):
            spec.loader.exec_module(module)
    except (Exception, SystemExit, KeyboardInterrupt) as error:
        del sys.modules[name]
        raise ConfigError(
            f"target {target!r}: loading {str(path)!r} {_what(error)}",
            hint=f"Check that `python {path}` runs.",
        ) from error
    return module


def _what(error: BaseException) -> str:
    """What an import did instead of finishing: "raised ValueError: ...", "called sys.exit(1)"."""
    if isinstance(error, SystemExit):
        return "called sys.exit()" if error.code is None else f"called sys.exit({error.code!r})"
    return f"raised {type(error).__name__}: {excerpt(str(error)) or '(no message)'}"


def _import_module(name: str, target: str) -> ModuleType:
    try:
        with isolated(target):
            return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and name.startswith(error.name):
            raise ConfigError(
                f"target {target!r}: no module named {error.name!r}.",
                hint="Install the package or check the spelling; a file is written "
                '"path/to/file.py:function".',
            ) from error
        raise ConfigError(
            f"target {target!r}: importing {name} raised ModuleNotFoundError: {error}",
        ) from error
    except (Exception, SystemExit, KeyboardInterrupt) as error:
        raise ConfigError(f"target {target!r}: importing {name} {_what(error)}") from error


def parameters(function: Callable[..., object], target: str) -> frozenset[str] | None:
    """Names of the arguments to pass; None means all of them (``**kwargs``)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return frozenset()  # builtins without a signature: call with no arguments
    names: set[str] = set()
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        known = parameter.name in ARGUMENTS
        if known and parameter.kind is not inspect.Parameter.POSITIONAL_ONLY:
            names.add(parameter.name)
        elif parameter.default is inspect.Parameter.empty:
            raise ConfigError(
                f"target {target!r}: parameter {parameter.name!r} cannot be supplied.",
                hint=f"A predictor takes any of these by name: {', '.join(ARGUMENTS)} "
                "(or **kwargs for all).",
            )
    return frozenset(names)
