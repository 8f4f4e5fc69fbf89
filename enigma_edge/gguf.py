"""Read GGUF model files: validated, memory-mapped, zero-copy.

The C++ reader (csrc/gguf/) checks the whole header at open -- counts, string lengths, types,
dimensions, alignment, tensor offsets and overlaps -- and raises :class:`GGUFError` (a
``ValueError``) naming the field and byte offset for anything malformed. Nothing is copied:
tensor data and numeric metadata arrays are read-only numpy views into the map.

Conventions
-----------
* ``TensorInfo.shape`` is in **ggml / GGUF file order**, ``shape[0]`` = ``ne[0]`` = the row length,
  exactly like gguf-py's ``ReaderTensor.shape``. ``tensor_data()`` returns numpy order (reversed):
  an F32 tensor with ``shape == (640, 1024)`` gives an array of shape ``(1024, 640)``.
* ``tensor_data()`` dtypes: F32 float32, F16 float16, F64 float64, I8..I64 int8..int64,
  BF16 **uint16** (raw bfloat16 bit patterns: ``(a.astype(np.uint32) << 16).view(np.float32)``
  converts), every block-quantized type **uint8** with the last dimension in bytes per row
  (``ne[0] / block_size * type_size``, gguf-py's ``quant_shape_to_byte_shape``).
* ``offset`` is the absolute byte offset of the tensor in the file (gguf-py's ``data_offset``);
  ``rel_offset`` is the offset stored in the file, relative to the data section.
* ``metadata`` values: ints, floats, bools, strs; every array is a lazy, read-only
  :class:`GGUFArray` sequence (a 262k-token list decodes an element only when it is read;
  ``.tolist()`` decodes all); numeric arrays also give a zero-copy read-only numpy view with
  ``.numpy()`` or ``np.asarray(arr)``. Reading headers never imports numpy.
  ``metadata_types`` gives each key's GGUF type, e.g. ``"UINT32"`` or ``"ARRAY[STRING]"``.
* Closing the file drops its map; numpy views taken from it keep the map alive until they go.

>>> import enigma_edge.gguf as gguf
>>> from enigma_edge.models import resolve_model
>>> with gguf.open(resolve_model(None)) as f:  # doctest: +SKIP
...     f.metadata["general.architecture"], f.tensors["token_embd.weight"].type
('gemma3', 'Q8_0')
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

from . import _core

GGUFError = _core.GGUFError
GGUFArray = _core.GGUFArray

__all__ = ["GGUFError", "GGUFArray", "GGUFFile", "TensorInfo", "open", "from_bytes"]


class TensorInfo(NamedTuple):
    """One tensor's description (no data is touched to build it)."""
    name: str
    type: str             # ggml type name: "F32", "Q4_K", ...
    type_id: int          # ggml type id as stored in the file
    shape: tuple          # ggml order: shape[0] = ne[0] = row length (gguf-py ReaderTensor.shape)
    n_elements: int
    offset: int           # absolute file offset of the data
    rel_offset: int       # offset inside the data section, as stored in the file
    nbytes: int


class GGUFFile:
    """An open GGUF file. Use :func:`open` (a context manager); ``close()`` is safe twice.

    >>> import enigma_edge.gguf as gguf
    >>> with gguf.open("model.gguf") as f:  # doctest: +SKIP
    ...     print(f.version, len(f.tensors), f.metadata["general.architecture"])
    """

    def __init__(self, reader: _core.GGUFReader, path: str | None = None):
        self._r = reader
        self.path = path
        self.version: int = reader.version
        self.alignment: int = reader.alignment
        self.data_offset: int = reader.data_offset
        self.file_size: int = reader.file_size
        self.tensors: dict[str, TensorInfo] = {
            name: TensorInfo(name, tname, tid, shape, n_el, off, rel, nbytes)
            for (name, tid, tname, shape, n_el, off, rel, nbytes) in reader.tensor_infos()
        }
        self._metadata: dict[str, Any] | None = None
        self._types: dict[str, str] | None = None
        self._offsets: dict[str, int] | None = None

    def _load_metadata(self) -> None:
        entries = self._reader().kv_entries()
        self._metadata = {k: v for k, _, _, v in entries}
        self._types = {k: t for k, t, _, _ in entries}
        self._offsets = {k: o for k, _, o, _ in entries}

    def _reader(self) -> _core.GGUFReader:
        if self._r is None:
            raise ValueError("GGUF file is closed")
        return self._r

    @property
    def metadata(self) -> dict[str, Any]:
        """Key -> Python value, in file order (built on first access)."""
        if self._metadata is None:
            self._load_metadata()
        return self._metadata

    @property
    def metadata_types(self) -> dict[str, str]:
        """Key -> GGUF value type: "UINT32", "STRING", "ARRAY[FLOAT32]", "ARRAY[ARRAY[INT8]]"..."""
        if self._types is None:
            self._load_metadata()
        return self._types

    @property
    def metadata_offsets(self) -> dict[str, int]:
        """Key -> byte offset of its entry in the file."""
        if self._offsets is None:
            self._load_metadata()
        return self._offsets

    def tensor_data(self, name: str):
        """Read-only numpy view of one tensor's bytes (see the module docstring for dtypes)."""
        if name not in self.tensors:
            raise KeyError(name)
        return self._reader().tensor_data(name)

    @property
    def core(self) -> _core.GGUFReader:
        """The C++ reader with the engine's typed getters: ``get_u32``, ``get_i32``, ``get_u64``,
        ``get_i64``, ``get_f32``, ``get_f64``, ``get_bool``, ``get_str`` / ``get_strings`` (raw
        bytes). They range-check (no wrap-around) and raise GGUFError naming the key."""
        return self._reader()

    @property
    def closed(self) -> bool:
        return self._r is None

    def close(self) -> None:
        """Release the file; the map is unmapped once no numpy view of it remains."""
        if self._r is not None:
            self._r.close()
            self._r = None

    def __enter__(self) -> "GGUFFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.tensors)} tensors"
        return f"<GGUFFile {self.path!r} v{self.version} {state}>"


def open(path: str | os.PathLike) -> GGUFFile:  # noqa: A001 - mirrors builtins.open on purpose
    """Open and validate a GGUF file (memory-mapped read-only).

    Raises GGUFError (a ValueError) for a malformed file, OSError when it cannot be opened.

    >>> import enigma_edge.gguf as gguf
    >>> with gguf.open("model.gguf") as f:  # doctest: +SKIP
    ...     f.tensors["output_norm.weight"].shape
    (640,)
    """
    p = os.fspath(path)
    if ("\0" if isinstance(p, str) else b"\0") in p:
        raise ValueError("embedded null byte in path")  # C would silently open a shorter path
    return GGUFFile(_core.GGUFReader(p), p)


def from_bytes(data: bytes) -> GGUFFile:
    """Parse GGUF bytes held in memory (a private copy is kept)."""
    return GGUFFile(_core.GGUFReader.from_bytes(bytes(data)), None)
