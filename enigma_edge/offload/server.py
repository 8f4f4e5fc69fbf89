"""OpenAI-compatible HTTP server around an LLM engine (``enigma-edge serve``).

The engine is duck-typed on ``llama_cpp.Llama``: ``create_chat_completion(messages, stream=True,
...)`` and ``create_completion(prompt, stream=True, ...)`` return iterators of OpenAI-shaped chunks,
``tokenize(...)`` counts tokens, and an optional ``cancel()`` stops a running generation. So both
``enigma_edge.LLM`` and ``llama_cpp.Llama`` can sit behind it.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions`` (SSE ``data: {...}`` lines ending
with ``data: [DONE]``, or one JSON body), ``GET /v1/models``, ``GET /health`` (503 while the model
loads, 200 when ready).

How a request runs: the aiohttp event loop validates it, admits it into a bounded queue (429 when
full), and hands it to ONE worker thread that owns the engine (the engine is not re-entrant and
releases the GIL while it computes). The worker pushes chunks back to the loop; the handler writes
them out. When the client goes away (a write fails, or the transport closes while we wait) the
handler sets the request's cancel flag: the worker stops iterating the engine's generator, closes
it, and calls ``engine.cancel()`` if the engine has one. Non-streaming requests run the same
streaming path and are assembled at the end, so they are cancellable too.

Security defaults: bind 127.0.0.1; any other bind needs an API key (``Authorization: Bearer``,
compared with :func:`hmac.compare_digest`) on every route but ``/health``; the ``Host`` header must
be in an allow-list (loopback names + the bind address + ``allowed_hosts``), which rejects DNS
rebinding and empty Hosts; no CORS unless origins are configured; request bodies, ``max_tokens``
and prompt length (``n_ctx``) are capped; bad JSON or fields give 400 with an OpenAI-style error
object. A request can only name the served model: nothing it says reaches the file system.

Example (real engine; needs the ``[serve]`` extra and llama-cpp-python or the enigma engine):

>>> from enigma_edge.offload.server import ServerConfig, run_server   # doctest: +SKIP
>>> run_server(lambda: load_engine("llama_cpp", None, n_ctx=2048, n_threads=2),
...            ServerConfig(port=8080))                               # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import ipaddress
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("enigma_edge.offload.server")

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
ROLES = ("system", "user", "assistant", "tool", "developer")


# --------------------------------------------------------------------------------------------
# configuration


@dataclass
class ServerConfig:
    """Everything ``serve`` can be told; defaults are the safe ones."""

    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None          # required when host is not loopback
    allowed_hosts: list[str] = field(default_factory=list)   # extra Host names (e.g. "pi.local")
    cors_origins: list[str] = field(default_factory=list)    # none: no CORS headers at all
    model_name: str = "enigma-edge"
    max_body_bytes: int = 1 << 20       # 1 MiB of JSON is plenty for a chat
    max_tokens_limit: int = 1024        # a request asking for more gets 400
    default_max_tokens: int = 256       # when a request does not say
    n_ctx: int = 2048                   # prompt tokens + max_tokens must fit
    queue_size: int = 8                 # waiting requests beyond the running one; more -> 429
    advertise: bool = False             # zeroconf _enigma-edge._tcp (opt-in)

    def check(self) -> None:
        """Refuse unsafe or nonsensical settings (ValueError with the reason)."""
        if not is_loopback(self.host) and not self.api_key:
            raise ValueError(f"binding {self.host} (not loopback) requires an API key: "
                             "set ENIGMA_EDGE_API_KEY or --api-key-file")
        if self.advertise and is_loopback(self.host):
            raise ValueError("--advertise announces the server to the local network; it needs a "
                             "non-loopback --host (and so an API key)")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ValueError("API key too short (use at least 8 characters, e.g. `openssl rand -hex 16`)")
        for name in ("max_body_bytes", "max_tokens_limit", "default_max_tokens", "n_ctx"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.queue_size < 0:
            raise ValueError("queue_size must be >= 0")
        if self.default_max_tokens > self.max_tokens_limit:
            self.default_max_tokens = self.max_tokens_limit

    def host_allow_list(self) -> set[str]:
        names = {h.lower() for h in LOOPBACK_NAMES}
        names.update(h.lower().strip("[]") for h in self.allowed_hosts)
        if self.host not in ("0.0.0.0", "::", ""):
            names.add(self.host.lower().strip("[]"))
        return names


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_of(header: str) -> str:
    """Host header value without the port: 'a:8080' -> 'a', '[::1]:80' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else ""
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


# --------------------------------------------------------------------------------------------
# errors and request validation


class APIError(Exception):
    """An error the client sees as an OpenAI-style error object."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _bad(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def _number(body: dict, key: str, lo: float, hi: float, default=None, integer: bool = False):
    value = body.get(key, default)
    if value is None:
        return default
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise _bad(f"'{key}' must be {'an integer' if integer else 'a number'}", key)
    if not lo <= value <= hi:
        raise _bad(f"'{key}' must be between {lo} and {hi}, got {value}", key)
    return value


def _content_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": "..."}]
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f"{where}: only text content parts are supported", where)
            parts.append(part["text"])
        return "".join(parts)
    raise _bad(f"{where}: content must be a string or a list of text parts", where)


def parse_request(body: Any, kind: str, cfg: ServerConfig) -> tuple[dict, bool, bool]:
    """Validate an OpenAI request body -> (engine kwargs, stream, include_usage).

    ``kind`` is "chat" or "completion". Unknown fields are ignored (clients send many);
    ``model`` may be anything (it is echoed, never used to find a file).
    """
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    kw: dict[str, Any] = {}
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _bad("'messages' must be a non-empty list", "messages")
        clean = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise _bad(f"messages[{i}] must be an object", f"messages[{i}]")
            role = m.get("role")
            if role not in ROLES:
                raise _bad(f"messages[{i}].role must be one of {', '.join(ROLES)}", f"messages[{i}].role")
            msg = {"role": "system" if role == "developer" else role,
                   "content": _content_text(m.get("content"), f"messages[{i}].content")}
            for extra in ("name", "tool_calls", "tool_call_id"):
                if extra in m:
                    msg[extra] = m[extra]
            clean.append(msg)
        kw["messages"] = clean
        if body.get("tools") is not None:
            if not isinstance(body["tools"], list):
                raise _bad("'tools' must be a list", "tools")
            kw["tools"] = body["tools"]
            if body.get("tool_choice") is not None:
                kw["tool_choice"] = body["tool_choice"]
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise _bad("'prompt' must be a string", "prompt")
        kw["prompt"] = prompt
        if body.get("echo"):
            raise _bad("'echo' is not supported", "echo")
    if body.get("n", 1) != 1:
        raise _bad("only n=1 is supported", "n")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("'stream' must be a boolean", "stream")
    limit = cfg.max_tokens_limit
    mt = body.get("max_completion_tokens", body.get("max_tokens"))
    key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    kw["max_tokens"] = _number({key: mt}, key, 1, limit, cfg.default_max_tokens, integer=True)
    if kw["max_tokens"] >= cfg.n_ctx:
        raise _bad(f"'{key}' must be below the context size {cfg.n_ctx}", key, "context_length_exceeded")
    kw["temperature"] = _number(body, "temperature", 0.0, 2.0, 0.8)
    kw["top_p"] = _number(body, "top_p", 0.0, 1.0, 0.95)
    seed = _number(body, "seed", -(2 ** 63), 2 ** 64 - 1, None, integer=True)
    if seed is not None:
        kw["seed"] = seed & 0xFFFFFFFF
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) and s for s in stop)):
            raise _bad("'stop' must be a string or a list of up to 4 non-empty strings", "stop")
        kw["stop"] = stop
    opts = body.get("stream_options") or {}
    if not isinstance(opts, dict):
        raise _bad("'stream_options' must be an object", "stream_options")
    return kw, stream, bool(opts.get("include_usage"))


# --------------------------------------------------------------------------------------------
# engine adapter: runs in the worker thread


def count_tokens(engine: Any, text: str) -> int:
    """Token count with the engine's own tokenizer (llama_cpp takes bytes, ours may take str)."""
    try:
        return len(engine.tokenize(text.encode("utf-8"), add_bos=False))
    except TypeError:
        return len(engine.tokenize(text))


class _Job:
    """One admitted request: kwargs in, chunks out through an asyncio queue, cancel flag."""

    DONE = object()

    def __init__(self, kind: str, kwargs: dict, loop: asyncio.AbstractEventLoop, stats: dict):
        self.kind, self.kwargs, self.loop, self.stats = kind, kwargs, loop, stats
        self.queue: asyncio.Queue = asyncio.Queue()
        self.cancel = threading.Event()

    def put(self, item) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down): nobody to tell
            self.cancel.set()

    def run(self, engine: Any) -> None:
        """Worker thread: iterate the engine's generator, stop on cancel."""
        if self.cancel.is_set():  # the client left while the request waited
            self.stats["cancelled"] += 1
            self.put(self.DONE)
            return
        gen = None
        try:
            call = engine.create_chat_completion if self.kind == "chat" else engine.create_completion
            gen = call(stream=True, **self.kwargs)
            for chunk in gen:
                if self.cancel.is_set():
                    cancel = getattr(engine, "cancel", None)
                    if callable(cancel):
                        cancel()
                    self.stats["cancelled"] += 1
                    break
                self.put(chunk)
            else:
                self.stats["completed"] += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop, which answers the client
            self.put(exc)
        finally:
            if gen is not None and hasattr(gen, "close"):
                try:
                    gen.close()
                except Exception:  # noqa: BLE001 - closing a finished generator must not mask the answer
                    log.exception("closing the engine generator failed")
            self.put(self.DONE)


# --------------------------------------------------------------------------------------------
# the application


class Server:
    """Owns the engine, its worker thread, the admission counter and the aiohttp app.

    ``engine_or_loader`` is a ready engine or a zero-argument callable that loads one (run in the
    worker thread at start-up; ``/health`` says 503 until it returns).
    """

    def __init__(self, engine_or_loader: Any, config: ServerConfig | None = None,
                 owns_engine: bool | None = None):
        self.cfg = config or ServerConfig()
        self.cfg.check()
        if callable(engine_or_loader) and not hasattr(engine_or_loader, "create_chat_completion"):
            self._loader, self.engine = engine_or_loader, None
        else:
            self._loader, self.engine = None, engine_or_loader
        # an engine the server loaded itself is closed at shutdown; a lent one is left alone
        self.owns_engine = self._loader is not None if owns_engine is None else owns_engine
        self.load_error: BaseException | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ee-serve-engine")
        self._admitted = 0
        self._jobs: set[_Job] = set()
        self._allowed_hosts = self.cfg.host_allow_list()
        self._key = self.cfg.api_key.encode() if self.cfg.api_key else None
        self.created = int(time.time())
        # counted by the worker thread: generations run to their end / stopped because the client left
        self.stats = {"completed": 0, "cancelled": 0}

    # ---- app wiring
    def make_app(self):
        from aiohttp import web

        app = web.Application(client_max_size=self.cfg.max_body_bytes,
                              middlewares=[self._errors_mw, self._guard_mw])
        app.router.add_get("/health", self.health)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        if self.cfg.cors_origins:
            app.router.add_route("OPTIONS", "/{tail:.*}", self.preflight)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, app) -> None:
        if self._loader is not None:
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(self._executor, self._loader)

            def _loaded(f):
                if f.exception() is not None:
                    self.load_error = f.exception()
                    log.error("model load failed: %s", self.load_error)
                else:
                    self.engine = f.result()
                    log.info("model ready")
            fut.add_done_callback(_loaded)

    async def _on_cleanup(self, app) -> None:
        # stop running generations, wait for the worker to let go of the engine, then close it
        for job in list(self._jobs):
            job.cancel.set()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self._executor.shutdown(wait=True, cancel_futures=True))
        close = getattr(self.engine, "close", None) if self.owns_engine else None
        if callable(close):
            await asyncio.get_running_loop().run_in_executor(None, close)

    # ---- middlewares
    @property
    def _errors_mw(self):
        from aiohttp import web

        @web.middleware
        async def errors(request, handler):
            try:
                return await handler(request)
            except APIError as exc:
                return self._json(request, exc.body(), exc.status)
            except web.HTTPRequestEntityTooLarge:
                exc = APIError(413, f"request body larger than {self.cfg.max_body_bytes} bytes", code="body_too_large")
                return self._json(request, exc.body(), 413)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                err = APIError(exc.status, exc.reason, "invalid_request_error" if exc.status < 500 else "server_error")
                return self._json(request, err.body(), exc.status)
        return errors

    @property
    def _guard_mw(self):
        from aiohttp import web

        @web.middleware
        async def guard(request, handler):
            # Host allow-list first (DNS rebinding: a browser page on evil.com resolving to us
            # still sends Host: evil.com). An absent or empty Host is refused too.
            host = host_of(request.headers.get("Host", ""))
            if not host or host not in self._allowed_hosts:
                raise APIError(403, "Host header not allowed", code="host_not_allowed")
            if self._key is not None and request.path != "/health" and request.method != "OPTIONS":
                auth = request.headers.get("Authorization", "")
                scheme, _, token = auth.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._key):
                    raise APIError(401, "missing or invalid API key", code="invalid_api_key")
            return await handler(request)
        return guard

    def _cors(self, request, headers: dict) -> dict:
        origin = request.headers.get("Origin")
        if origin and self.cfg.cors_origins and (origin in self.cfg.cors_origins or "*" in self.cfg.cors_origins):
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
        return headers

    def _json(self, request, body: dict, status: int = 200):
        from aiohttp import web
        return web.json_response(body, status=status, headers=self._cors(request, {}))

    async def preflight(self, request):
        from aiohttp import web
        origin = request.headers.get("Origin")
        if not origin or not (origin in self.cfg.cors_origins or "*" in self.cfg.cors_origins):
            raise APIError(403, "origin not allowed", code="cors_origin_not_allowed")
        return web.Response(status=204, headers=self._cors(request, {
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600"}))

    # ---- simple routes
    async def health(self, request):
        if self.load_error is not None:
            return self._json(request, {"status": "error", "error": str(self.load_error)}, 500)
        if self.engine is None:
            return self._json(request, {"status": "loading"}, 503)
        return self._json(request, {"status": "ok", "model": self.cfg.model_name,
                                    "queue": {"admitted": self._admitted, "limit": self.cfg.queue_size + 1},
                                    "generations": dict(self.stats)})

    async def models(self, request):
        return self._json(request, {"object": "list", "data": [
            {"id": self.cfg.model_name, "object": "model", "created": self.created, "owned_by": "enigma-edge"}]})

    async def chat(self, request):
        return await self._generate(request, "chat")

    async def completions(self, request):
        return await self._generate(request, "completion")

    # ---- generation
    async def _read_json(self, request):
        if request.content_length is not None and request.content_length > self.cfg.max_body_bytes:
            raise APIError(413, f"request body larger than {self.cfg.max_body_bytes} bytes", code="body_too_large")
        raw = await request.read()  # raises HTTPRequestEntityTooLarge past client_max_size
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad(f"invalid JSON body: {exc}") from None

    async def _check_ctx(self, kind: str, kw: dict) -> int:
        if kind == "chat":
            text = "\n".join(m["content"] for m in kw["messages"])
        else:
            text = kw["prompt"]
        # the tokenizer is read-only (safe beside a running generation); off the loop for long input
        n = await asyncio.get_running_loop().run_in_executor(None, count_tokens, self.engine, text)
        # chat templates add tokens around the messages; the engine itself also refuses overflow.
        if n + kw["max_tokens"] > self.cfg.n_ctx:
            raise _bad(f"prompt ({n} tokens) + max_tokens ({kw['max_tokens']}) exceeds the context "
                       f"size {self.cfg.n_ctx}", "messages" if kind == "chat" else "prompt",
                       "context_length_exceeded")
        return n

    async def _generate(self, request, kind: str):
        from aiohttp import web

        body = await self._read_json(request)
        kw, stream, include_usage = parse_request(body, kind, self.cfg)
        if self.load_error is not None:
            raise APIError(500, f"model failed to load: {self.load_error}", "server_error")
        if self.engine is None:
            raise APIError(503, "model is loading", "server_error", code="model_loading")
        prompt_tokens = await self._check_ctx(kind, kw)
        if self._admitted >= self.cfg.queue_size + 1:
            raise APIError(429, "server busy: request queue full", "rate_limit_error", code="queue_full")
        self._admitted += 1
        loop = asyncio.get_running_loop()
        job = _Job(kind, kw, loop, self.stats)
        self._jobs.add(job)
        loop.run_in_executor(self._executor, job.run, self.engine)
        rid = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]
        try:
            if stream:
                return await self._stream(request, job, kind, rid, prompt_tokens, include_usage)
            return await self._collect(request, job, kind, rid, prompt_tokens)
        except ConnectionResetError:  # left before the first token; nobody reads this answer
            log.info("client went away before %s started", rid)
            return web.Response(status=499)
        finally:
            job.cancel.set()  # no-op when finished; stops the worker if we left early
            self._jobs.discard(job)
            self._admitted -= 1

    async def _next(self, request, job: _Job):
        """Next item from the worker; sets the cancel flag when the client has gone away."""
        while True:
            try:
                return await asyncio.wait_for(job.queue.get(), timeout=0.25)
            except asyncio.TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    job.cancel.set()
                    raise ConnectionResetError("client disconnected") from None

    def _engine_error(self, exc: BaseException) -> APIError:
        if isinstance(exc, ValueError):  # llama_cpp: "Requested tokens (...) exceed context window"
            return APIError(400, str(exc), code="context_length_exceeded" if "context" in str(exc) else None)
        log.error("generation failed: %r", exc)
        return APIError(500, f"generation failed: {type(exc).__name__}: {exc}", "server_error")

    def _fix_chunk(self, chunk: dict, rid: str) -> dict:
        chunk = dict(chunk)
        chunk["id"], chunk["model"] = rid, self.cfg.model_name
        chunk.pop("usage", None)  # sent as its own chunk, and only when the client asked
        return chunk

    async def _stream(self, request, job, kind, rid, prompt_tokens, include_usage):
        from aiohttp import web

        # Wait for the first item before sending headers, so an engine error is a proper status.
        first = await self._next(request, job)
        if isinstance(first, BaseException):
            raise self._engine_error(first)
        resp = web.StreamResponse(status=200, headers=self._cors(request, {
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}))
        await resp.prepare(request)
        n_out, item, created, engine_usage = 0, first, int(time.time()), None
        try:
            while item is not _Job.DONE:
                if isinstance(item, BaseException):  # mid-stream failure: error event, no [DONE]
                    await resp.write(b"data: " + json.dumps(self._engine_error(item).body()).encode() + b"\n\n")
                    return resp
                if item.get("usage"):   # engines that count (enigma_edge.LLM) say it in the last chunk
                    engine_usage = item["usage"]
                chunk = self._fix_chunk(item, rid)
                if _chunk_text(chunk, kind):
                    n_out += 1
                await resp.write(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")
                item = await self._next(request, job)
            if include_usage:
                usage = {"id": rid, "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
                         "created": created, "model": self.cfg.model_name, "choices": [],
                         "usage": engine_usage or _usage(prompt_tokens, n_out)}
                await resp.write(b"data: " + json.dumps(usage).encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError) as exc:
            job.cancel.set()
            log.info("client went away during %s: %s", rid, exc)
        return resp

    async def _collect(self, request, job, kind, rid, prompt_tokens):
        text, finish, n_out, tool_calls, engine_usage = [], None, 0, {}, None
        try:
            while (item := await self._next(request, job)) is not _Job.DONE:
                if isinstance(item, BaseException):
                    raise self._engine_error(item)
                engine_usage = item.get("usage") or engine_usage
                for choice in item.get("choices", []):
                    piece = _choice_text(choice, kind)
                    if piece:
                        text.append(piece)
                        n_out += 1
                    for tc in (choice.get("delta") or {}).get("tool_calls") or []:
                        slot = tool_calls.setdefault(tc.get("index", 0), {"id": tc.get("id"), "type": "function",
                                                                         "function": {"name": "", "arguments": ""}})
                        fn = tc.get("function") or {}
                        slot["function"]["name"] += fn.get("name") or ""
                        slot["function"]["arguments"] += fn.get("arguments") or ""
                    finish = choice.get("finish_reason") or finish
        except ConnectionResetError:
            log.info("client went away during %s", rid)
            from aiohttp import web
            return web.Response(status=499)  # nginx's "client closed request"; never delivered
        content = "".join(text)
        if kind == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if tool_calls:
                message["tool_calls"] = [tool_calls[i] for i in sorted(tool_calls)]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish or "stop"}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": content, "logprobs": None, "finish_reason": finish or "stop"}
            obj = "text_completion"
        return self._json(request, {"id": rid, "object": obj, "created": int(time.time()),
                                    "model": self.cfg.model_name, "choices": [choice],
                                    "usage": engine_usage or _usage(prompt_tokens, n_out)})


def _choice_text(choice: dict, kind: str) -> str:
    if kind == "chat":
        return (choice.get("delta") or {}).get("content") or ""
    return choice.get("text") or ""


def _chunk_text(chunk: dict, kind: str) -> str:
    return "".join(_choice_text(c, kind) for c in chunk.get("choices", []))


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    # used when the engine does not report usage in its stream (llama-cpp-python):
    # completion tokens = chunks with text (one token per chunk there);
    # prompt tokens = the messages' text without the chat template's own tokens.
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


# --------------------------------------------------------------------------------------------
# engines and the command


ENGINES = ("enigma", "llama_cpp")


def load_engine(kind: str, model: str | None, n_ctx: int, n_threads: int | None, seed: int | None = None):
    """Load the engine named ``kind`` on ``model`` (None -> the default model)."""
    from ..models import resolve_model

    path = str(resolve_model(model))
    if kind == "enigma":
        try:
            from ..llm import LLM
        except ImportError as exc:
            raise RuntimeError(f"the enigma-edge LLM engine is not available ({exc}); "
                               "use --engine llama_cpp") from None
        kwargs: dict[str, Any] = {"n_ctx": n_ctx}
        if n_threads:
            kwargs["n_threads"] = n_threads
        return LLM(path, **kwargs)
    if kind == "llama_cpp":
        try:
            from llama_cpp import Llama
        except ImportError:
            raise RuntimeError("llama-cpp-python is not installed (pip install llama-cpp-python)") from None
        # n_threads_batch too: llama-cpp-python's default for it is every core, which makes prompt
        # processing fight whatever else runs (llama_cpp.server sets both from --n_threads)
        return Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads or None,
                     n_threads_batch=n_threads or None, verbose=False,
                     **({"seed": seed} if seed is not None else {}))
    raise ValueError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")


def run_server(engine_or_loader: Any, config: ServerConfig, ready: Callable[[], None] | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM)."""
    from aiohttp import web

    server = Server(engine_or_loader, config)
    app = server.make_app()
    handles = []
    if config.advertise:
        from .discovery import advertise

        async def _adv(app):
            handles.append(await asyncio.get_running_loop().run_in_executor(
                None, lambda: advertise(config.port, model=config.model_name, auth=bool(config.api_key),
                                        host=config.host)))

        async def _unadv(app):
            for h in handles:
                h.close()
        app.on_startup.append(_adv)
        app.on_cleanup.append(_unadv)
    log.info("serving %s on http://%s:%d (auth %s)", config.model_name, config.host, config.port,
             "on" if config.api_key else "off")
    web.run_app(app, host=config.host, port=config.port, print=None, handle_signals=True,
                access_log=None)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="GGUF model path (default: the default model)")
    parser.add_argument("--engine", choices=ENGINES, default="enigma",
                        help="engine behind the server (default: enigma, this package's LLM)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--api-key-file", help="file holding the API key (or set ENIGMA_EDGE_API_KEY); "
                        "required for a non-loopback --host")
    parser.add_argument("--allow-host", action="append", default=[],
                        help="extra Host header name to accept (repeat), e.g. pi.local")
    parser.add_argument("--cors-origin", action="append", default=[],
                        help="allow this browser Origin (repeat); default: no CORS")
    parser.add_argument("--model-name", default=None, help="name shown in /v1/models (default: file stem)")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=1024, help="largest max_tokens a request may ask")
    parser.add_argument("--queue", type=int, default=8, help="waiting requests before 429")
    parser.add_argument("--max-body", type=int, default=1 << 20, help="largest request body in bytes")
    parser.add_argument("--advertise", action="store_true",
                        help="announce this server with zeroconf (_enigma-edge._tcp); off by default")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    key = os.environ.get("ENIGMA_EDGE_API_KEY") or None
    if args.api_key_file:
        with open(args.api_key_file, encoding="utf-8") as f:
            key = f.read().strip() or None
    name = args.model_name
    if name is None:
        name = os.path.splitext(os.path.basename(args.model))[0] if args.model else "gemma-3-270m-q4_k_m"
    cfg = ServerConfig(host=args.host, port=args.port, api_key=key, allowed_hosts=args.allow_host,
                       cors_origins=args.cors_origin, model_name=name, max_body_bytes=args.max_body,
                       max_tokens_limit=args.max_tokens, n_ctx=args.n_ctx, queue_size=args.queue,
                       advertise=args.advertise)
    cfg.check()  # refuse an unsafe bind before loading anything
    # fail fast on what can be checked cheaply; the load itself runs behind /health (503 meanwhile)
    import importlib.util
    from ..models import resolve_model
    module = {"enigma": "enigma_edge.llm", "llama_cpp": "llama_cpp"}[args.engine]
    if importlib.util.find_spec(module) is None:
        raise RuntimeError(f"engine {args.engine!r} is not installed (module {module})"
                           + ("; use --engine llama_cpp" if args.engine == "enigma" else ""))
    model = str(resolve_model(args.model))
    run_server(lambda: load_engine(args.engine, model, args.n_ctx, args.threads), cfg)
    return 0
