"""LLM engine benchmark: enigma-edge vs llama-cpp-python, same GGUF, same prompt, same threads.

Measures (each engine and thread count in its own fresh process): prefill tok/s for 64 and 512
prompt tokens, greedy decode tok/s for 128 tokens, cold start (process start -> first generated
token) and peak RSS. Medians over --repeats; ratios ours/llama.cpp; optional --write appends the
table to BENCHMARKS.md. With --rounds N the two engines' processes alternate N times (llama.cpp,
ours, llama.cpp, ours, ...): on a machine whose speed drifts (a shared host) each round compares
the engines under the same conditions; the table then pools every round's samples and adds the
per-round ratios.

    python benchmarks/llm.py --threads 1 2 --repeats 3 --write
    python benchmarks/llm.py --threads 1 2 --repeats 3 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = r'''
import json, os, resource, sys, time
t_start = float(sys.argv[1]); engine = sys.argv[2]; path = sys.argv[3]; threads = int(sys.argv[4]); repeats = int(sys.argv[5])
import numpy as np
words = ("the quick brown fox jumps over a lazy dog while robots hum softly in the workshop " * 80).split()
res = {}
if engine == "ours":
    from enigma_edge import _core
    e = _core.Engine(path, 1024, threads, "f16")
    tok = e.tokenizer()
    p = _core.SamplerParams(); p.temperature = 0.0
    ids = tok.encode(" ".join(words), True, False)
    e.decode(ids[:8]); first, _ = e.sample(p, 1)
    res["cold_start_s"] = time.time() - t_start
    def prefill(n):
        e.reset(); t = time.perf_counter(); e.decode(ids[:n]); return n / (time.perf_counter() - t)
    def decode(n):
        e.reset(); e.decode(ids[:8]); t = time.perf_counter(); st = 1
        for _ in range(n):
            nxt, st = e.sample(p, st); e.decode([nxt])
        return n / (time.perf_counter() - t)
else:
    from llama_cpp import Llama
    ll = Llama(path, n_ctx=1024, n_threads=threads, n_threads_batch=threads, n_batch=512, flash_attn=False, verbose=False)
    ids = ll.tokenize(" ".join(words).encode())
    ll.eval(ids[:8]); first = int(np.argmax(ll.scores[ll.n_tokens - 1]))
    res["cold_start_s"] = time.time() - t_start
    def prefill(n):
        ll.reset(); t = time.perf_counter(); ll.eval(ids[:n]); return n / (time.perf_counter() - t)
    def decode(n):
        ll.reset(); ll.eval(ids[:8]); t = time.perf_counter(); nxt = int(np.argmax(ll.scores[ll.n_tokens - 1]))
        for _ in range(n):
            ll.eval([nxt]); nxt = int(np.argmax(ll.scores[ll.n_tokens - 1]))
        return n / (time.perf_counter() - t)
prefill(16); decode(4)  # warm-up
res["prefill64"] = [prefill(64) for _ in range(repeats)]
res["prefill512"] = [prefill(512) for _ in range(repeats)]
res["decode128"] = [decode(128) for _ in range(repeats)]
res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(res))
'''


def run(engine, path, threads, repeats):
    out = subprocess.run([sys.executable, "-c", CHILD, repr(time.time()), engine, path, str(threads), str(repeats)],
                         capture_output=True, text=True, cwd="/tmp")
    if out.returncode:
        raise RuntimeError(f"{engine} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default=None)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="alternate the engines' processes this many times")
    ap.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = ap.parse_args()
    from enigma_edge.models import resolve_model

    path = str(resolve_model(args.model))
    def samples(res, key):
        v = res[key]
        return v if isinstance(v, list) else [v]

    rows = []
    for th in args.threads:
        rounds = []
        for i in range(args.rounds):
            rounds.append({eng: run(eng, path, th, args.repeats) for eng in ("llama.cpp", "ours")})
            if args.rounds > 1:
                print(f"# {th} thread(s): round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        for metric, key in (("prefill 64 tok/s", "prefill64"), ("prefill 512 tok/s", "prefill512"),
                            ("decode 128 tok/s", "decode128"), ("cold start to 1st token s", "cold_start_s"),
                            ("peak RSS MB", "peak_rss_mb")):
            a = statistics.median([x for r in rounds for x in samples(r["llama.cpp"], key)])
            b = statistics.median([x for r in rounds for x in samples(r["ours"], key)])
            per_round = [statistics.median(samples(r["ours"], key)) / statistics.median(samples(r["llama.cpp"], key))
                         for r in rounds]
            rows.append((th, metric, a, b, b / a if a else float("nan"), per_round))
    header = "| threads | metric | llama-cpp-python | enigma-edge | ratio ours/llama.cpp |"
    if args.rounds > 1:
        header += " ratio per round |"
    lines = [header, "|---|---|---|---|---|" + ("---|" if args.rounds > 1 else "")]
    for t, m, a, b, ratio, per_round in rows:
        line = f"| {t} | {m} | {a:.2f} | {b:.2f} | {ratio:.2f} |"
        if args.rounds > 1:
            line += " " + ", ".join(f"{x:.2f}" for x in per_round) + " |"
        lines.append(line)
    table = "\n".join(lines)
    print(table)
    if args.write:
        import platform

        note = (f"\n## LLM engine (benchmarks/llm.py)\n\nModel `{os.path.basename(path)}`, {platform.machine()}, "
                f"medians of {args.repeats} x {args.rounds} round(s), f16 KV, flash attention off, greedy.\n"
                f"Command: `python benchmarks/llm.py --threads {' '.join(map(str, args.threads))} --repeats {args.repeats} "
                f"--rounds {args.rounds} --write`\n\n"
                + table + "\n")
        bm = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")
        if not os.path.exists(bm):
            with open(bm, "w") as f:
                f.write("# Benchmarks\n")
        with open(bm, "a") as f:
            f.write(note)


if __name__ == "__main__":
    main()
