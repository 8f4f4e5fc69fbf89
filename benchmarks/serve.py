"""Serving benchmark: requests/s and time to first token under N concurrent streaming clients,
`enigma-edge serve` vs llama-cpp-python's server, same model, same threads, same requests.

Each server runs alone (started, measured, stopped) so they never share the CPU. Every client
sends `--requests` streaming /v1/completions requests back to back (greedy, `--max-tokens`);
TTFT is from sending the request to the first SSE chunk with text. Reported: median TTFT,
requests/s over the whole round, and the ratio ours / theirs, each the median of `--repeat`
alternating runs.

    python benchmarks/serve.py --engine llama_cpp --threads 2 --clients 1 2 4 --requests 3 --max-tokens 16

`--engine enigma` puts enigma-edge's own LLM behind our server (once it is on main); with
`--engine llama_cpp` both servers run the same llama.cpp engine, so the difference is the
server layer alone.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PROMPTS = [
    "Q: What is the capital of France?\nA:",
    "Q: Name a primary colour.\nA:",
    "The three laws of robotics are",
    "1, 2, 3, 4, 5,",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, path: str, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server not ready")


def start(which: str, model: str, threads: int, engine: str, n_ctx: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    if which == "enigma-edge serve":
        argv = [sys.executable, "-c", "import sys; from enigma_edge.cli import main; sys.exit(main(sys.argv[1:]))",
                "serve", model, "--engine", engine, "--port", str(port), "--threads", str(threads),
                "--n-ctx", str(n_ctx), "--queue", "16"]
        path = "/health"
    else:
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
                "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
                "--n_threads_batch", str(threads), "--verbose", "False",
                # its default aborts the running stream when a new request arrives; we finish every request
                "--interrupt_requests", "False"]
        path = "/v1/models"
    proc = subprocess.Popen(argv, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc, path)
    return proc, port


def one_request(port: int, prompt: str, max_tokens: int) -> tuple[float, int]:
    """(ttft seconds, text chunks) for one streaming completion."""
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}).encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:200]!r}")
    ttft, n = None, 0
    for line in iter(r.readline, b""):
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        if json.loads(data)["choices"][0].get("text"):
            n += 1
            if ttft is None:
                ttft = time.perf_counter() - t0
    c.close()
    if ttft is None:
        raise RuntimeError("no text streamed")
    return ttft, n


def round_(port: int, clients: int, requests: int, max_tokens: int) -> dict:
    ttfts: list[float] = []
    tokens = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(i: int):
        try:
            for j in range(requests):
                t, n = one_request(port, PROMPTS[(i + j) % len(PROMPTS)], max_tokens)
                with lock:
                    ttfts.append(t)
                    tokens[0] += n
        except BaseException as exc:  # noqa: BLE001 - reported after the round
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return {"rps": clients * requests / wall, "ttft": statistics.median(ttfts), "tok_s": tokens[0] / wall,
            "tok_per_req": tokens[0] / (clients * requests)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--engine", default="llama_cpp", choices=["llama_cpp", "enigma"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--requests", type=int, default=3, help="requests per client per round")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs per server; medians reported")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server we started, too
    from enigma_edge.models import resolve_model
    model = str(resolve_model(args.model))
    servers = ["enigma-edge serve", "llama_cpp.server"]
    runs: dict[tuple[str, int], list[dict]] = {}
    # servers alternate (ours, theirs, ours, theirs ...) so a noisy neighbour hits both alike
    for rep in range(args.repeat):
        for which in servers:
            proc, port = start(which, model, args.threads, args.engine, args.n_ctx)
            try:
                one_request(port, PROMPTS[0], 4)  # warm-up (page in the model)
                for n in args.clients:
                    r = round_(port, n, args.requests, args.max_tokens)
                    runs.setdefault((which, n), []).append(r)
                    print(f"rep {rep} {which:18s} N={n}: {r}", file=sys.stderr, flush=True)
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    results = {k: {m: statistics.median(r[m] for r in v) for m in ("rps", "ttft", "tok_s", "tok_per_req")}
               for k, v in runs.items()}
    print(f"\nengine behind `enigma-edge serve`: {args.engine}; threads {args.threads}; "
          f"{args.requests} requests/client; max_tokens {args.max_tokens}; medians of {args.repeat} "
          f"alternating runs; CPU {os.cpu_count()}\n")
    print("| clients | ours req/s | llama_cpp.server req/s | ratio | ours TTFT ms (median) "
          "| llama_cpp.server TTFT ms | ratio | tokens/request ours / theirs |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.clients:
        a, b = results[(servers[0], n)], results[(servers[1], n)]
        print(f"| {n} | {a['rps']:.2f} | {b['rps']:.2f} | {a['rps'] / b['rps']:.2f} | {a['ttft'] * 1e3:.0f} "
              f"| {b['ttft'] * 1e3:.0f} | {a['ttft'] / b['ttft']:.2f} "
              f"| {a['tok_per_req']:.1f} / {b['tok_per_req']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
