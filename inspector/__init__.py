"""hfsize: exact parameters, checkpoint facts and memory of Hugging Face models, from metadata alone.

The public API (documented in the README's "Library" section) is imported lazily, so that `import inspector`
(and `hfsize --help`) stays free of torch; a call builds the model class only when it needs to. Calls return the
frozen dataclasses of `inspector.results` and leave the process as they found it (no client swap, no thread).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_PUBLIC = {
    "inspect_model": "api",
    "check_model": "api",
    "compare_models": "api",
    "fetch": "api",
    "report_for": "api",
    "MemorySettings": "memory",
    "parse_gpu": "gpus",
    "to_json": "render",
    "HfsizeError": "errors",
    "Report": "results",
    "CheckResult": "results",
    "Comparison": "results",
}
# Entry points other work adds (`hfsize plan`, `hfsize explain`): exported when the module that defines them
# is there, looked up in api.py first, then in a module of their own.
_OPTIONAL = {"plan_model": ("api", "plan"), "explain_model": ("api", "explain")}

__all__ = list(_PUBLIC)

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly ("as" marks a re-export)
    from .api import check_model as check_model
    from .api import compare_models as compare_models
    from .api import fetch as fetch
    from .api import inspect_model as inspect_model
    from .api import report_for as report_for
    from .errors import HfsizeError as HfsizeError
    from .gpus import parse_gpu as parse_gpu
    from .memory import MemorySettings as MemorySettings
    from .render import to_json as to_json
    from .results import CheckResult as CheckResult
    from .results import Comparison as Comparison
    from .results import Report as Report


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    for module in _OPTIONAL.get(name, ()):
        try:
            found = getattr(importlib.import_module(f".{module}", __name__), name, None)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{module}":
                raise  # the module is there but an import inside it failed: say so, do not hide it
            continue
        if found is not None:
            return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
