"""Imports on demand: the optional packages each extra brings (one line naming the extra when one is missing),
and the package facades' names loaded on first use."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from types import ModuleType

from masterocr.errors import UserError

# import name -> (distribution to name in the message, the extra that installs it)
OPTIONAL: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime", "onnx"),
    "onnx": ("onnx", "export"),
    "onnxscript": ("onnxscript", "export"),
    "tensorboard": ("tensorboard", "train"),
    "wordfreq": ("wordfreq", "synth"),
    "fastapi": ("fastapi", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "multipart": ("python-multipart", "serve"),
}


class MissingExtra(UserError):
    """An optional package is not installed; the message names the extra that brings it."""


def missing_message(module: str, feature: str, extra: str | None = None) -> str:
    """One line: what needs the package, and the pip command that installs it."""
    dist, default_extra = OPTIONAL.get(module, (module, "all"))
    return f"{feature} needs the '{dist}' package: pip install 'masterocr[{extra or default_extra}]'"


def check_installed(feature: str, *modules: str, extra: str | None = None) -> None:
    """MissingExtra for the first of `modules` that is not installed, without importing any of them (a check
    made before a run folder or output is created)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a broken half-install
            found = False
        if not found:
            raise MissingExtra(missing_message(module, feature, extra))


def require(module: str, feature: str, extra: str | None = None) -> ModuleType:
    """Import an optional package, or raise MissingExtra naming the extra to install. `extra` overrides the
    package's usual one (onnxruntime's quantization tools are part of making graphs: [export])."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # the package is there but one of its own dependencies is broken: show the real error
        raise MissingExtra(missing_message(top, feature, extra)) from None


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` (PEP 562) for `package`'s facade: each public name is imported from its module
    (exports: name -> module) on first use and kept in the facade."""
    facade = importlib.import_module(package)

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(facade, name, value)  # later look-ups skip this function
        return value

    return __getattr__
