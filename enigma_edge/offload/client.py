"""Offload client: stream a generation from the first healthy peer, fail over with no seam.

Peers are OpenAI-compatible servers in a fixed order (enigma-edge ``serve``, llama.cpp's
llama-server, Ollama, vLLM, llama-cpp-python's server), each with a URL, an optional key and a
model name. The last resort is the local engine (anything shaped like ``llama_cpp.Llama``).

What happens on a request (:meth:`OffloadClient.chat_stream`, :meth:`OffloadClient.complete_stream`):

1. The policy picks the route: ``never`` -> local only; ``always`` -> peers, then local;
   ``when_too_big`` -> peers then local when the local model is too big for this board, else
   local only. (The board profile's ``offload`` field holds the policy.)
2. Each peer is tried unless its circuit breaker is open (``breaker_failures`` failures in a row
   open it for ``breaker_cooldown`` s; then one trial request is let through). A 503 means
   "loading" (llama.cpp, us): skipped for this request without counting as a failure.
3. Deadlines: connect within ``connect_timeout``, the first text within ``first_token_timeout``,
   then no gap between chunks longer than ``idle_timeout``. Refused connections, HTTP errors
   (401 wrong key, 429, 5xx), bytes that are not SSE JSON, an error event, or a stream that ends
   without ``data: [DONE]`` all count as failures -> next peer.
4. No seam: text already yielded to the caller is kept; the next peer is asked to continue it.
   For completions that is exact: the prompt becomes ``prompt + emitted`` on ``/v1/completions``.
   For chat, peers do not share one chat template, so the client appends the partial answer as an
   ``assistant`` message and (a) with ``Peer(prefill=True)`` (llama.cpp's llama-server continues a
   trailing assistant message) sends it as is, or (b) by default adds a ``user`` message asking to
   continue exactly where the text stops without repeating it. The local engine gets (b) as well.
   Limits: (b) is an instruction, so a model may repeat a few words or change its wording; a
   word cut in the middle may be completed with a space; sampling differs between peers anyway.
   ``max_tokens`` for the continuation is what is left of the budget (chunks counted as tokens).

The client needs only the standard library (``http.client``), so a Pi Zero running the voice
assistant does not need the ``[serve]`` extra. It is a blocking generator; asyncio callers wrap
it with ``asyncio.to_thread`` or iterate it in a worker.

Example (a real peer on loopback, the local engine as fallback):

>>> from enigma_edge.offload.client import OffloadClient, Peer              # doctest: +SKIP
>>> client = OffloadClient([Peer("http://127.0.0.1:8080", key=None)], local=llm, policy="always")
>>> "".join(client.chat_stream([{"role": "user", "content": "Hi"}], max_tokens=16))  # doctest: +SKIP
"""
from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlsplit

log = logging.getLogger("enigma_edge.offload.client")

POLICIES = ("never", "when_too_big", "always")
CONTINUE_INSTRUCTION = ("Continue your previous answer exactly from where it stops. Do not repeat "
                        "any of it and do not comment; output only the continuation.")


class PeerError(Exception):
    """One peer failed for this request (the client moves on to the next)."""


class PeerLoading(PeerError):
    """The peer answered 503: it is up but its model is still loading."""


class OffloadError(RuntimeError):
    """Every route failed; ``attempts`` lists (peer, reason)."""

    def __init__(self, attempts: list[tuple[str, str]]):
        super().__init__("no peer and no local engine could answer: " +
                         "; ".join(f"{p}: {r}" for p, r in attempts))
        self.attempts = attempts


@dataclass
class Peer:
    """One OpenAI-compatible server. ``url`` is the base, with or without ``/v1``."""

    url: str
    key: str | None = None
    model: str | None = None
    name: str | None = None
    prefill: bool = False         # the server continues a trailing assistant message (llama-server)

    def __post_init__(self):
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"peer URL must be http(s)://host[:port][/v1], got {self.url!r}")
        path = parts.path.rstrip("/")
        self.api = path if path.endswith("/v1") else path + "/v1"
        self.root = path[:-3] if path.endswith("/v1") else path
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        if self.name is None:
            self.name = f"{self.host}:{self.port}"

    @classmethod
    def from_dict(cls, d: dict) -> "Peer":
        unknown = set(d) - {"url", "key", "model", "name", "prefill"}
        if unknown:
            raise ValueError(f"unknown peer setting(s): {', '.join(sorted(unknown))}")
        if "url" not in d:
            raise ValueError("a peer needs a 'url'")
        return cls(**d)


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float | None = None


@dataclass
class _Progress:
    """What the caller has already received, across peers."""

    text: list[str] = field(default_factory=list)
    tokens: int = 0

    @property
    def joined(self) -> str:
        return "".join(self.text)


class OffloadClient:
    """Ordered peers + local fallback, with deadlines, a circuit breaker and seamless failover."""

    def __init__(self, peers: list[Peer | dict], local: Any = None, policy: str = "always",
                 local_too_big: bool = False, connect_timeout: float = 3.0,
                 first_token_timeout: float = 30.0, idle_timeout: float = 10.0,
                 breaker_failures: int = 2, breaker_cooldown: float = 30.0):
        if policy not in POLICIES:
            raise ValueError(f"offload policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.peers = [p if isinstance(p, Peer) else Peer.from_dict(p) for p in peers]
        self.local, self.policy, self.local_too_big = local, policy, local_too_big
        self.connect_timeout, self.first_token_timeout = connect_timeout, first_token_timeout
        self.idle_timeout = idle_timeout
        self.breaker_failures, self.breaker_cooldown = breaker_failures, breaker_cooldown
        self._breakers = {p.name: _Breaker() for p in self.peers}
        self._lock = threading.Lock()
        self.last_route: str | None = None     # who finished the last request ("local" or a peer name)
        self.last_attempts: list[tuple[str, str]] = []

    # ---------------------------------------------------------------- routing
    def route(self) -> list[Peer]:
        """Peers to try for the next request, in order (breakers and policy applied)."""
        if self.policy == "never" or (self.policy == "when_too_big" and not self.local_too_big):
            return []
        now = time.monotonic()
        out = []
        with self._lock:
            for p in self.peers:
                b = self._breakers[p.name]
                if b.opened_at is not None and now - b.opened_at < self.breaker_cooldown:
                    continue  # open: skip without touching the network
                out.append(p)  # closed, or half-open (one trial after the cool-down)
        return out

    def breaker_open(self, peer: Peer | str) -> bool:
        b = self._breakers[peer if isinstance(peer, str) else peer.name]
        return b.opened_at is not None and time.monotonic() - b.opened_at < self.breaker_cooldown

    def _failed(self, peer: Peer) -> None:
        with self._lock:
            b = self._breakers[peer.name]
            b.failures += 1
            if b.failures >= self.breaker_failures:
                b.opened_at = time.monotonic()

    def _succeeded(self, peer: Peer) -> None:
        with self._lock:
            self._breakers[peer.name] = _Breaker()

    def health(self, peer: Peer, timeout: float | None = None) -> str:
        """Probe ``GET /health``: "ok", "loading" (503: up, model loading) or "down"."""
        try:
            conn = self._connect(peer, timeout or self.connect_timeout)
            try:
                conn.request("GET", peer.root + "/health", headers=self._headers(peer))
                status = conn.getresponse().status
            finally:
                conn.close()
        except (OSError, http.client.HTTPException):
            return "down"
        return "ok" if status == 200 else "loading" if status == 503 else "down"

    # ---------------------------------------------------------------- public API
    def chat_stream(self, messages: list[dict], max_tokens: int = 256, **params) -> Iterator[str]:
        """Yield the assistant's text as it arrives, from whichever route finishes it."""
        return self._run("chat", {"messages": list(messages)}, max_tokens, params)

    def complete_stream(self, prompt: str, max_tokens: int = 256, **params) -> Iterator[str]:
        """Yield a plain completion of ``prompt`` as it arrives."""
        return self._run("completion", {"prompt": prompt}, max_tokens, params)

    def chat(self, messages: list[dict], max_tokens: int = 256, **params) -> str:
        return "".join(self.chat_stream(messages, max_tokens, **params))

    def complete(self, prompt: str, max_tokens: int = 256, **params) -> str:
        return "".join(self.complete_stream(prompt, max_tokens, **params))

    # ---------------------------------------------------------------- the loop
    def _run(self, kind: str, base: dict, max_tokens: int, params: dict) -> Iterator[str]:
        allowed = {"temperature", "top_p", "stop", "seed"}
        bad = set(params) - allowed
        if bad:
            raise TypeError(f"unsupported parameter(s): {', '.join(sorted(bad))}")
        progress = _Progress()
        attempts: list[tuple[str, str]] = []
        self.last_attempts, self.last_route = attempts, None
        for peer in self.route():
            if progress.tokens >= max_tokens:
                break
            body = self._continuation(kind, base, progress, peer.prefill)
            body.update(params, max_tokens=max_tokens - progress.tokens, stream=True)
            if peer.model:
                body["model"] = peer.model
            try:
                finished = yield from self._from_peer(peer, kind, body, progress)
            except PeerLoading as exc:
                attempts.append((peer.name, str(exc)))
                continue  # up but loading: not a breaker failure
            except PeerError as exc:
                log.warning("peer %s failed: %s", peer.name, exc)
                attempts.append((peer.name, str(exc)))
                self._failed(peer)
                continue
            self._succeeded(peer)
            if finished:
                self.last_route = peer.name
                return
        if progress.tokens >= max_tokens and progress.text:
            self.last_route = attempts[-1][0] if attempts else None
            return
        if self.local is None:
            raise OffloadError(attempts or [("-", "no route: no peer allowed and no local engine")])
        yield from self._from_local(kind, base, progress, max_tokens - progress.tokens, params)
        self.last_route = "local"

    @staticmethod
    def _continuation(kind: str, base: dict, progress: _Progress, prefill: bool) -> dict:
        if not progress.text:
            return dict(base)
        done = progress.joined
        if kind == "completion":
            return {"prompt": base["prompt"] + done}
        msgs = list(base["messages"]) + [{"role": "assistant", "content": done}]
        if not prefill:
            msgs.append({"role": "user", "content": CONTINUE_INSTRUCTION})
        return {"messages": msgs}

    # ---------------------------------------------------------------- HTTP
    def _connect(self, peer: Peer, timeout: float) -> http.client.HTTPConnection:
        if peer.scheme == "https":
            return http.client.HTTPSConnection(peer.host, peer.port, timeout=timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(peer.host, peer.port, timeout=timeout)

    @staticmethod
    def _headers(peer: Peer) -> dict:
        h = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if peer.key:
            h["Authorization"] = f"Bearer {peer.key}"
        return h

    def _from_peer(self, peer: Peer, kind: str, body: dict, progress: _Progress):
        """Stream one peer into ``progress``; returns True when the peer finished the answer."""
        path = peer.api + ("/chat/completions" if kind == "chat" else "/completions")
        try:
            conn = self._connect(peer, self.connect_timeout)
            conn.connect()
        except OSError as exc:
            raise PeerError(f"connect failed: {exc}") from None
        try:
            deadline = time.monotonic() + self.first_token_timeout
            sock = conn.sock  # kept: http.client drops conn.sock when the response owns the socket
            sock.settimeout(self.first_token_timeout)
            conn.request("POST", path, body=json.dumps(body).encode(), headers=self._headers(peer))
            try:
                resp = conn.getresponse()
            except (socket.timeout, TimeoutError):
                raise PeerError("timed out waiting for the first token (no response)") from None
            if resp.status == 503:
                raise PeerLoading("503: loading")
            if resp.status != 200:
                raise PeerError(f"HTTP {resp.status}: {_error_message(resp.read(4096))}")
            ctype = resp.getheader("Content-Type", "")
            if "text/event-stream" not in ctype:
                raise PeerError(f"not an event stream (Content-Type {ctype!r})")
            got_text = False
            while True:
                # first-token deadline until text arrives, then the idle timeout between chunks
                timeout = max(0.01, deadline - time.monotonic()) if not got_text else self.idle_timeout
                sock.settimeout(timeout)
                try:
                    line = resp.readline(65536)
                except (socket.timeout, TimeoutError):
                    raise PeerError("timed out waiting for the " +
                                    ("next chunk" if got_text else "first token")) from None
                if not line:
                    raise PeerError("stream ended without [DONE]")
                if not got_text and time.monotonic() > deadline:
                    raise PeerError("timed out waiting for the first token")
                line = line.strip()
                if not line or line.startswith(b":"):
                    continue  # keep-alive / comment
                if not line.startswith(b"data:"):
                    if line.startswith((b"event:", b"id:", b"retry:")):
                        continue
                    raise PeerError(f"garbage in the stream: {line[:60]!r}")
                data = line[5:].strip()
                if data == b"[DONE]":
                    return True
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise PeerError(f"garbage in the stream: {data[:60]!r}") from None
                if not isinstance(chunk, dict):
                    raise PeerError("garbage in the stream: not a JSON object")
                if "error" in chunk:
                    raise PeerError(f"error event: {_error_message(json.dumps(chunk).encode())}")
                for choice in chunk.get("choices") or []:
                    piece = ((choice.get("delta") or {}).get("content") if kind == "chat"
                             else choice.get("text"))
                    if piece:
                        got_text = True
                        progress.text.append(piece)
                        progress.tokens += 1
                        yield piece
        except (OSError, http.client.HTTPException) as exc:
            raise PeerError(f"{type(exc).__name__}: {exc}") from None
        finally:
            conn.close()

    # ---------------------------------------------------------------- local engine
    def _from_local(self, kind: str, base: dict, progress: _Progress, max_tokens: int, params: dict):
        body = self._continuation(kind, base, progress, prefill=False)
        call = self.local.create_chat_completion if kind == "chat" else self.local.create_completion
        gen = call(**body, max_tokens=max_tokens, stream=True, **params)
        try:
            for chunk in gen:
                for choice in chunk.get("choices") or []:
                    piece = ((choice.get("delta") or {}).get("content") if kind == "chat"
                             else choice.get("text"))
                    if piece:
                        progress.text.append(piece)
                        progress.tokens += 1
                        yield piece
        finally:
            close = getattr(gen, "close", None)
            if callable(close):
                close()


def _error_message(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        return str(err.get("message", err) if isinstance(err, dict) else err)[:200]
    except ValueError:
        return raw[:200].decode("utf-8", "replace")


def policy_from_profile(profile: Any) -> str:
    """The ``offload`` policy of a board profile: ``boards.BoardProfile`` (``profile.llm.offload``),
    an object with ``.offload``, or a mapping with ``"offload"``; default ``when_too_big``."""
    if isinstance(profile, dict):
        value = profile.get("offload")
    elif hasattr(getattr(profile, "llm", None), "offload"):
        value = profile.llm.offload
    else:
        value = getattr(profile, "offload", None)
    if isinstance(value, dict):  # [offload] table with a policy key
        value = value.get("policy")
    value = value or "when_too_big"
    if value not in POLICIES:
        raise ValueError(f"board profile offload policy must be one of {', '.join(POLICIES)}, got {value!r}")
    return value


def local_model_too_big(model_bytes: int, ram_bytes: int | None = None, headroom: float = 1.25) -> bool:
    """True when a model file would not fit in RAM (MemAvailable by default) with headroom
    for the KV cache and the rest of the process."""
    if ram_bytes is None:
        ram_bytes = _mem_available()
    return model_bytes * headroom > ram_bytes


def too_big_for_board(model_bytes: int, profile: Any) -> bool:
    """The board profile's verdict (``profile.llm.max_local_model_mb``), and never past MemAvailable."""
    limit_mb = getattr(getattr(profile, "llm", None), "max_local_model_mb", None)
    if limit_mb is not None and model_bytes > limit_mb * 1024 * 1024:
        return True
    return local_model_too_big(model_bytes)


def _mem_available() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("MemAvailable not found in /proc/meminfo")
