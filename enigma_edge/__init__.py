"""enigma-edge: an offline AI runtime for Raspberry Pi boards.

Importing the package is cheap: the compiled core and every capability (LLM, voice, robot,
offload) load on first use.

>>> import enigma_edge
>>> enigma_edge.__version__
'0.1.0'
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> (module, attribute); resolved on first access (PEP 562) so `import enigma_edge` stays cheap.
_LAZY = {
    "LLM": ("enigma_edge.llm", "LLM"),
    "cpu_info": ("enigma_edge._cpu", "cpu_info"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'enigma_edge' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return __all__
