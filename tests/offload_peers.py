"""Real peers on loopback for the offload tests: `enigma-edge serve` and llama-cpp-python's
server as subprocesses, our Server in-process (for its counters), and small socket servers that
misbehave on purpose (they are the peers under test: a peer that hangs or sends garbage).
Imported by tests/test_offload_*.py (pytest puts tests/ on sys.path)."""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

SERVE_CODE = "import sys; from enigma_edge.cli import main; sys.exit(main(sys.argv[1:]))"


def _serve_engine() -> str:
    """The engine behind `enigma-edge serve` in these tests: our own LLM once it is installed,
    llama-cpp-python's until then (ENIGMA_EDGE_TEST_SERVE_ENGINE picks one explicitly)."""
    import importlib.util
    chosen = os.environ.get("ENIGMA_EDGE_TEST_SERVE_ENGINE")
    if chosen:
        return chosen
    return "enigma" if importlib.util.find_spec("enigma_edge.llm") else "llama_cpp"


SERVE_ENGINE = _serve_engine()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_path() -> str:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (heavy optional engine) not installed")
    from enigma_edge.models import resolve_model
    return str(resolve_model(None))


def http_request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                 timeout: float = 60.0) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def wait_health(port: int, proc: subprocess.Popen | None = None, timeout: float = 180.0,
                path: str = "/health") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"peer exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            status, _, _ = http_request(port, "GET", path, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"peer on port {port} not healthy after {timeout}s")


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies (a crashed run leaves no servers)."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Proc:
    """A peer process; stop() is safe twice."""

    def __init__(self, argv: list[str], port: int, env: dict | None = None, ready_path: str = "/health"):
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self._cwd = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(argv, cwd=self._cwd.name, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        try:
            wait_health(port, self.proc, path=ready_path)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()
        self._cwd.cleanup()


def start_serve(*extra: str, key: str | None = None, engine: str = SERVE_ENGINE) -> Proc:
    port = free_port()
    env = dict(os.environ)
    env.pop("ENIGMA_EDGE_API_KEY", None)
    if key:
        env["ENIGMA_EDGE_API_KEY"] = key
    argv = [sys.executable, "-c", SERVE_CODE, "serve", model_path(), "--engine", engine, "--port", str(port),
            "--threads", "1", "--n-ctx", "512", "--model-name", "gemma-test", *extra]
    return Proc(argv, port, env)


def start_llama_cpp_server() -> Proc:
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] not installed")
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", model_path(), "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", "512", "--n_threads", "1", "--verbose", "False"]
    return Proc(argv, port, ready_path="/v1/models")


class InProcessServer:
    """Our Server on a loopback port, its event loop in a thread (for tests that read its state)."""

    def __init__(self, engine_or_loader, **cfg):
        from enigma_edge.offload.server import Server, ServerConfig

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # the engine is a test fixture shared between tests: the server must not close it
        self.server = Server(engine_or_loader, ServerConfig(port=self.port, **cfg), owns_engine=False)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("in-process server did not start")

    def _main(self):
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self.server.make_app(), access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def close(self):
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MisbehavingPeer:
    """A TCP server that accepts and answers with a fixed script: `reply` bytes (optionally after a
    valid first SSE chunk), then either hangs (`hang=True`) or closes. Real sockets, real HTTP bytes."""

    def __init__(self, reply: bytes = b"", hang: bool = False, valid_first: str | None = None, kind: str = "chat"):
        self.reply, self.hang, self.valid_first, self.kind = reply, hang, valid_first, kind
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self._conns.append(conn)
            self.requests += 1
            try:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    got = conn.recv(65536)
                    if not got:
                        break
                    data += got
                out = b""
                if self.valid_first is not None:
                    if self.kind == "chat":
                        chunk = {"choices": [{"index": 0, "delta": {"content": self.valid_first}}]}
                    else:
                        chunk = {"choices": [{"index": 0, "text": self.valid_first}]}
                    out = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                           b"data: " + json.dumps(chunk).encode() + b"\n\n")
                out += self.reply
                if out:
                    conn.sendall(out)
                if not self.hang:
                    conn.close()
            except OSError:
                pass

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for c in self._conns:
            c.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
