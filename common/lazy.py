"""Packages whose public names load on first use, so importing the package is cheap (no torch) and running one
of its command modules never finds that module already imported by the package."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any


def lazy_names(
    package: str, modules: dict[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose public names are listed under the submodule defining
    them (`{"weights": ("load_model", "save_model")}`). A submodule that is not a public name stays reachable
    as `package.<module>`. Each value is cached in the package's namespace, so later look-ups skip
    `__getattr__`."""
    namespace = sys.modules[package].__dict__
    names = {name: module for module, exported in modules.items() for name in exported}

    def __getattr__(name: str) -> Any:
        if name not in names:
            if importlib.util.find_spec(f"{package}.{name}") is not None:
                return importlib.import_module(f".{name}", package)
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{names[name]}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__


__all__ = ["lazy_names"]
