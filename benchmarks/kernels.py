"""Kernel benchmark: matvec GB/s of weight bytes as a fraction of this machine's read bandwidth
(measured in the same run), per ISA path, 1 and 2 threads; and prefill matmul GFLOP/s.

    python benchmarks/kernels.py                    # full table (about a minute)
    python benchmarks/kernels.py --quick            # fewer shapes
    python benchmarks/kernels.py --markdown         # print a BENCHMARKS.md table

Read bandwidth = bytes / time of a numpy sum over a 512 MiB array (one thread; two threads sum
halves concurrently, numpy releases the GIL). For the large shapes each kernel call is paired with a
bandwidth measurement right before it (same thread count) and the fraction is median(kernel GB/s) /
median(paired bandwidth), so a machine shared with other jobs skews both alike. 262144x640 (Gemma's
output layer) streams from DRAM; 4096x4096 of the 4-bit types fits a 32 MB L3. Small shapes are
cache-resident: their "fraction" shows compute speed against DRAM bandwidth, >1 is expected.
"""
from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor


def _median_cpu_time(fn, repeats: int) -> float:
    """Median CPU time of the calling thread (1-thread runs execute in it): immune to time slicing
    on a shared machine, so it shows the kernel's own speed."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return statistics.median(times)


def _median_time(fn, repeats: int, min_time: float = 0.0) -> float:
    fn()  # warm-up
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) > 2000:
            break
    return statistics.median(times)


class Bandwidth:
    """numpy-sum read bandwidth over a 512 MiB array with 1 or 2 threads."""

    def __init__(self, mib: int = 512):
        import numpy as np
        self.a = np.ones(mib * 2**20 // 8, dtype=np.float64)
        self.parts = np.array_split(self.a, 2)
        self.ex = ThreadPoolExecutor(2)

    def once(self, threads: int) -> float:
        import numpy as np
        t0 = time.perf_counter()
        if threads == 1:
            self.a.sum()
        else:
            list(self.ex.map(np.sum, self.parts))
        return self.a.nbytes / (time.perf_counter() - t0) / 1e9

    def median(self, threads: int, repeats: int = 5) -> float:
        self.once(threads)
        return statistics.median(self.once(threads) for _ in range(repeats))

    def paired(self, fn, nbytes: int, threads: int, repeats: int = 7) -> tuple[float, float]:
        """(median bandwidth, median kernel GB/s), each kernel call right after a bandwidth probe."""
        fn()
        bws, ks = [], []
        for _ in range(repeats):
            bws.append(self.once(threads))
            t0 = time.perf_counter()
            fn()
            ks.append(nbytes / (time.perf_counter() - t0) / 1e9)
        return statistics.median(bws), statistics.median(ks)


def make_weight(name: str, rows: int, cols: int, rng):
    """Valid GGUF blocks: quantize up to 2048 random rows, tile them to `rows`."""
    import numpy as np
    from enigma_edge import _core
    base = min(rows, 2048)
    wq = _core.quantize(name, rng.standard_normal((base, cols)).astype(np.float32)).reshape(base, -1)
    reps = -(-rows // base)
    return np.ascontiguousarray(np.tile(wq, (reps, 1))[:rows]).reshape(-1)


def main(argv=None) -> int:
    import numpy as np
    from enigma_edge import _core

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--types", default="Q8_0,Q4_0,Q5_0,Q4_K,Q6_K")
    ap.add_argument("--paths", default=None, help="comma list (default: every available path)")
    args = ap.parse_args(argv)

    info = _core.cpu_info()
    paths = args.paths.split(",") if args.paths else info["available"]
    types = args.types.split(",")
    rng = np.random.default_rng(0)
    probe = Bandwidth()
    bw = {t: probe.median(t) for t in (1, 2)}
    print(f"# cpu: {info['arch']} features={','.join(info['features'])} default isa={info['isa']}")
    print(f"# read bandwidth (numpy sum, 512 MiB): 1 thread {bw[1]:.1f} GB/s, 2 threads {bw[2]:.1f} GB/s")

    large = [(4096, 4096), (262144, 640), (65536, 2048)]   # the last one is DRAM-sized for K types too
    small = [(2048, 640), (640, 2048), (1024, 640)]
    if args.quick:
        large, small = [(262144, 640), (65536, 2048)], [(640, 2048)]
    rows_out = []
    print("\n## matvec (GB/s of weight bytes; fraction of read bandwidth at the same thread count)")
    print(f"{'type':6} {'shape':>12} {'MB':>7} {'path':8} {'thr':>3} {'GB/s':>7} {'bw':>6} {'frac':>6} {'us':>9} {'cpuGB/s':>8}")
    for name in types:
        is_k = name.endswith("_K")
        for rows, cols in large + small:
            if is_k and cols % 256:
                continue
            if not is_k and (rows, cols) == (65536, 2048):
                continue   # 262144x640 already streams from DRAM for the 32-block types
            wq = make_weight(name, rows, cols, rng)
            x = rng.standard_normal(cols).astype(np.float32)
            big = wq.nbytes > 64 * 2**20
            for path in paths:
                if path == "scalar" and big and name != "Q8_0":
                    continue   # the reference path is slow; one large scalar row per run is enough
                for thr in (1, 2):
                    fn = lambda: _core.matvec(name, wq, rows, cols, x, threads=thr, isa=path)  # noqa: E731
                    if (rows, cols) in large:
                        bw_here, gbs = probe.paired(fn, wq.nbytes, thr)
                        t = wq.nbytes / gbs / 1e9
                    else:
                        bw_here = bw[thr]
                        t = _median_time(fn, 50, 0.3)
                        gbs = wq.nbytes / t / 1e9
                    cpu_gbs = wq.nbytes / _median_cpu_time(fn, 20 if not big else 3) / 1e9 if thr == 1 else float("nan")
                    r = dict(type=name, shape=f"{rows}x{cols}", mb=wq.nbytes / 1e6, path=path, threads=thr,
                             gbs=gbs, frac=gbs / bw_here, us=t * 1e6, bw=bw_here, cpu_gbs=cpu_gbs)
                    rows_out.append(r)
                    print(f"{name:6} {r['shape']:>12} {r['mb']:7.1f} {path:8} {thr:3d} {gbs:7.2f} {bw_here:6.1f} {r['frac']:6.2f} {t*1e6:9.1f} {cpu_gbs:8.2f}",
                          flush=True)

    print("\n## matmul / prefill (GFLOP/s = 2*rows*cols*tokens / time)")
    print(f"{'type':6} {'shape':>12} {'tok':>4} {'path':8} {'thr':>3} {'GFLOP/s':>8} {'ms':>8} {'cpuGFLOP/s':>10}")
    mm_out = []
    mm_shapes = [(2048, 640), (640, 2048)] if not args.quick else [(640, 2048)]
    for name in types:
        for rows, cols in mm_shapes:
            if name.endswith("_K") and cols % 256:
                continue
            wq = make_weight(name, rows, cols, rng)
            for ntok in (64, 512):
                X = rng.standard_normal((ntok, cols)).astype(np.float32)
                for path in [p for p in paths if p != "scalar"] or paths:
                    for thr in (1, 2):
                        t = _median_time(lambda: _core.matmul(name, wq, rows, cols, X, threads=thr, isa=path), 3, 0.2)
                        gf = 2 * rows * cols * ntok / t / 1e9
                        cgf = (2 * rows * cols * ntok / _median_cpu_time(
                            lambda: _core.matmul(name, wq, rows, cols, X, threads=1, isa=path), 3) / 1e9) if thr == 1 else float("nan")
                        mm_out.append(dict(type=name, shape=f"{rows}x{cols}", tok=ntok, path=path, threads=thr, gflops=gf,
                                           cpu_gflops=cgf, ms=t * 1e3))
                        print(f"{name:6} {rows}x{cols:<7} {ntok:4d} {path:8} {thr:3d} {gf:8.1f} {t*1e3:8.2f} {cgf:8.1f}", flush=True)

    if args.markdown:
        print("\n| type | shape | MB | path | threads | GB/s | read BW GB/s | fraction | GB/s per CPU-second |")
        print("|---|---|---:|---|---:|---:|---:|---:|---:|")
        for r in rows_out:
            print(f"| {r['type']} | {r['shape']} | {r['mb']:.1f} | {r['path']} | {r['threads']} | {r['gbs']:.1f} | {r['bw']:.1f} | "
                  f"{r['frac']:.2f} | {r['cpu_gbs']:.1f} |")
        print("\n| type | shape | tokens | path | threads | GFLOP/s (wall) | GFLOP/s per CPU-second |")
        print("|---|---|---:|---|---:|---:|---:|")
        for r in mm_out:
            print(f"| {r['type']} | {r['shape']} | {r['tok']} | {r['path']} | {r['threads']} | {r['gflops']:.1f} | {r['cpu_gflops']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
