"""CPU / ISA information from the compiled core."""
from __future__ import annotations


def cpu_info() -> dict:
    """What the core detected and which kernel path it chose.

    >>> import enigma_edge
    >>> sorted(enigma_edge.cpu_info())  # doctest: +SKIP
    ['arch', 'features', 'isa', ...]
    """
    from . import _core
    return dict(_core.cpu_info())
