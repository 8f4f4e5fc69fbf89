"""Two builds of enigma-edge side by side on the default model: 1-thread greedy decode and prefill,
each build in its own fresh process, the builds alternating round by round, so a host whose speed
drifts (a shared VM) hits both alike. For judging a kernel change at the model level.

Install each build into its own folder first, e.g. the previous commit and the working tree:

    git worktree add /tmp/prev HEAD~1
    pip install --no-deps --target /tmp/build-prev /tmp/prev
    pip install --no-deps --target /tmp/build-cur .
    python benchmarks/compare_builds.py /tmp/build-prev /tmp/build-cur --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r'''
import json, sys, time
from enigma_edge import _core
from enigma_edge.models import resolve_model
threads, decode_n, prefill = int(sys.argv[1]), int(sys.argv[2]), [int(v) for v in sys.argv[3].split(",")]
e = _core.Engine(str(resolve_model(None)), 1024, threads, "f16")
ids = e.tokenizer().encode("the quick brown fox jumps over a lazy dog while robots hum softly in the workshop " * 80, True, False)
p = _core.SamplerParams(); p.temperature = 0.0
res = {"module": _core.__file__}
for n in prefill:
    best = 0.0
    for _ in range(3):
        e.reset(); t = time.perf_counter(); e.decode(ids[:n]); best = max(best, n / (time.perf_counter() - t))
    res[f"prefill {n} tok/s"] = best
best = 0.0
for _ in range(3):
    e.reset(); e.decode(ids[:8]); st = 1; t = time.perf_counter()
    for _ in range(decode_n):
        nxt, st = e.sample(p, st); e.decode([nxt])
    best = max(best, decode_n / (time.perf_counter() - t))
res[f"decode {decode_n} tok/s"] = best
print(json.dumps(res))
'''


def run(build: str, threads: int, decode_n: int, prefill: str) -> dict:
    env = dict(os.environ, PYTHONPATH=build + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(decode_n), prefill],
                         capture_output=True, text=True, env=env, cwd="/tmp")
    if out.returncode:
        raise SystemExit(f"build {build} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="folder holding build A (pip install --target)")
    ap.add_argument("b", help="folder holding build B")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--decode", type=int, default=128, help="tokens to decode")
    ap.add_argument("--prefill", default="64,512", help="prompt lengths, comma separated")
    args = ap.parse_args(argv)
    for d in (args.a, args.b):
        if not os.path.isdir(os.path.join(d, "enigma_edge")):
            ap.error(f"{d} holds no enigma_edge package (pip install --no-deps --target {d} <source>)")
    res = {"a": [], "b": []}
    for i in range(args.rounds):
        for key, build in (("a", args.a), ("b", args.b)):
            r = run(build, args.threads, args.decode, args.prefill)
            if not r.pop("module").startswith(os.path.abspath(build)):
                raise SystemExit(f"{build}: the child imported another enigma_edge; is it installed with --target?")
            res[key].append(r)
        print(f"# round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"| metric ({args.threads} thread(s), best of 3 per process) | A | B | B/A per round | B/A of medians |")
    print("|---|---:|---:|---|---:|")
    for metric in res["a"][0]:
        a = [r[metric] for r in res["a"]]
        b = [r[metric] for r in res["b"]]
        per_round = ", ".join(f"{y / x:.2f}" for x, y in zip(a, b))
        print(f"| {metric} | {statistics.median(a):.1f} | {statistics.median(b):.1f} | {per_round} | "
              f"{statistics.median(b) / statistics.median(a):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
