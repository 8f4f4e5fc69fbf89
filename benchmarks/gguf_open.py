"""Open a GGUF file and list all its tensors: enigma_edge.gguf vs gguf-py's GGUFReader.

Both sides run in this process on the same file (page cache warm after the first run); the
median of repeated runs is reported with the ratio. Also measured: `import enigma_edge` (median
of fresh interpreters) and `enigma-edge inspect` on the same file (median of fresh processes).
Writes/replaces the "GGUF open" section of BENCHMARKS.md.

    python benchmarks/gguf_open.py [MODEL.gguf] [--runs 15] [--peer-runs 5] [--no-write]

gguf-py's reader builds Python objects for every metadata element (Gemma: 262,144 tokens), so one
open takes seconds; --peer-runs keeps that side short on a shared machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SECTION = "## GGUF open + list tensors"


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ours_open_list(path: str):
    import enigma_edge.gguf as eg
    with eg.open(path) as f:
        return [(t.name, t.type, t.shape, t.offset, t.nbytes) for t in f.tensors.values()]


def ours_open_list_metadata(path: str):
    """Same plus every metadata value fully decoded (token strings included): like gguf-py's work."""
    import enigma_edge.gguf as eg
    with eg.open(path) as f:
        md = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in f.metadata.items()}
        return md, [(t.name, t.type, t.shape, t.offset, t.nbytes) for t in f.tensors.values()]


def peer_open_list(path: str):
    import gguf
    r = gguf.GGUFReader(path)
    return [(t.name, t.tensor_type.name, tuple(int(x) for x in t.shape), t.data_offset, t.n_bytes) for t in r.tensors]


def subprocess_median(args: list[str], runs: int, parse_stdout: bool = False) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run(args, capture_output=True, text=True, check=True, cwd="/")
        wall = time.perf_counter() - t
        times.append(float(out.stdout.strip()) if parse_stdout else wall)
    return statistics.median(times)


def write_section(text: str, path: Path) -> None:
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION in old:
        start = old.index(SECTION)
        nxt = old.find("\n## ", start + len(SECTION))
        old = old[:start].rstrip("\n") + ("\n\n" + old[nxt + 1:] if nxt != -1 else "\n")
    path.write_text(old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=None, help="GGUF file (default: the default model)")
    ap.add_argument("--runs", type=int, default=15, help="runs of our reader and of subprocess timings")
    ap.add_argument("--peer-runs", type=int, default=5, help="runs of gguf-py's GGUFReader (slow)")
    ap.add_argument("--no-write", action="store_true", help="print only, do not touch BENCHMARKS.md")
    args = ap.parse_args()

    from enigma_edge.models import resolve_model
    path = str(resolve_model(args.model))
    import gguf  # noqa: F401  (imported before timing: module import is not part of an open)

    a, b = ours_open_list(path), peer_open_list(path)
    assert a == b, "readers disagree on the tensor list"
    ours = median_time(lambda: ours_open_list(path), args.runs)
    ours_md = median_time(lambda: ours_open_list_metadata(path), args.runs)
    peer = median_time(lambda: peer_open_list(path), args.peer_runs)

    py = sys.executable
    imp = subprocess_median([py, "-c", "import time; t=time.perf_counter(); import enigma_edge; "
                                       "print(time.perf_counter()-t)"], args.runs, parse_stdout=True)
    bare = subprocess_median([py, "-c", "pass"], args.runs)
    inspect = subprocess_median([py, "-c", "import sys; from enigma_edge.cli import main; sys.exit(main(sys.argv[1:]))",
                                 "inspect", path], args.runs)

    n = len(a)
    size_mb = os.path.getsize(path) / 1e6
    rows = [
        ("enigma_edge.gguf: open + list tensors", ours, args.runs),
        ("enigma_edge.gguf: open + list + decode all metadata", ours_md, args.runs),
        ("gguf-py GGUFReader: open + list tensors", peer, args.peer_runs),
    ]
    cpu = platform.processor() or platform.machine()
    text = [
        SECTION,
        "",
        f"File: `{Path(path).name}` ({size_mb:.1f} MB, {n} tensors). Machine: {cpu}, {os.cpu_count()} CPUs "
        f"(shared with other jobs while measuring), Python {platform.python_version()}, page cache warm.",
        "",
        "| what | median | runs |",
        "|---|---:|---:|",
        *[f"| {name} | {t * 1e3:.2f} ms | {r} |" for name, t, r in rows],
        f"| `import enigma_edge` (fresh interpreter, import only) | {imp * 1e3:.1f} ms | {args.runs} |",
        f"| fresh interpreter doing nothing (`python -c pass`, wall) | {bare * 1e3:.1f} ms | {args.runs} |",
        f"| `enigma-edge inspect` on the file (fresh process, wall) | {inspect * 1e3:.1f} ms | {args.runs} |",
        "",
        f"Ratio gguf-py / ours (open + list tensors): **{peer / ours:,.0f}x**; "
        f"with all metadata decoded on our side: **{peer / ours_md:,.0f}x**.",
        "",
        "Command: `python benchmarks/gguf_open.py` "
        f"(`--runs {args.runs} --peer-runs {args.peer_runs}`; the tensor lists of both readers are "
        "checked equal first).",
    ]
    out = "\n".join(text)
    print(out)
    if not args.no_write:
        root = Path(__file__).resolve().parent.parent
        write_section(out, root / "BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
