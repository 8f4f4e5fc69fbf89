"""Resource governor: will this model fit on this board, and how hot is the board right now.

Memory: before a model loads, :func:`plan_model` estimates what it needs and compares that with
``MemAvailable`` minus the profile's reserve:

* mapped weights -- the GGUF's tensor data (the file is mmapped; decode reads every page per
  token, so all of it must stay resident);
* KV cache -- ``2 * n_layer * n_ctx * n_kv_heads * head_dim * bytes(kv_type)`` (K and V; with
  different key/value head sizes the two halves are summed separately);
* scratch -- float32 activations for a prefill micro-batch of ``UBATCH`` tokens, the attention
  scores (``n_head * n_ctx``), the logits (``n_vocab``) and ``RUNTIME_OVERHEAD`` for the
  interpreter and the core.

It then decides, in this order: ``load`` as the profile says; ``smaller_kv`` (f16 -> q8_0 at the
same context); ``shorter_ctx`` (halve the context down to ``llm.min_ctx``); ``offload`` to a peer
(policy ``when_too_big``/``always`` and a peer configured); else ``refuse``. The plan's
``message`` states the numbers and the choice.

Heat: :class:`ThermalWatcher` reads ``/sys/class/thermal/thermal_zone*/temp`` (and
``vcgencmd get_throttled`` where present), lowers the LLM threads one step per poll while the SoC
is at or above ``thermal.throttle_c`` (or the firmware reports throttling), raises them one step
per poll once it is at or below ``thermal.restore_c``, holds in between (hysteresis), calls a
callback and logs each change.

>>> from enigma_edge import boards, governor
>>> facts = governor.ModelFacts(name="demo", arch="llama", weights_bytes=200 << 20, n_layer=16,
...     n_ctx_train=4096, n_embd=1024, n_head=16, n_kv_heads=4, head_dim_k=64, head_dim_v=64,
...     n_ff=2816, n_vocab=32000)
>>> plan = governor.plan_model(facts, boards.load_profile("pi_zero2"), mem_available=330 << 20)
>>> plan.decision, plan.n_ctx, plan.kv_type
('load', 1024, 'q8_0')
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger("enigma_edge.governor")

MiB = 1 << 20
# Bytes per KV element: ggml's block sizes (q8_0: 34-byte blocks of 32, q4_0: 18 of 32).
KV_TYPE_BYTES = {"f32": 4.0, "f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
# KV types the governor may step down to by itself (q4_0 only when a profile asks for it: a 4-bit
# K cache costs noticeable quality).
KV_FALLBACK = ("f32", "f16", "q8_0")
UBATCH = 32                      # prefill micro-batch the scratch estimate assumes
RUNTIME_OVERHEAD = 32 * MiB      # interpreter, core library, thread stacks, tokenizer tables


@dataclass(frozen=True)
class ModelFacts:
    """What the governor needs to know about a model (from its GGUF metadata)."""
    name: str
    arch: str
    weights_bytes: int   # size of all tensor data (what gets mapped)
    n_layer: int
    n_ctx_train: int
    n_embd: int
    n_head: int
    n_kv_heads: int
    head_dim_k: int
    head_dim_v: int
    n_ff: int
    n_vocab: int
    reader: str = "given"


def model_facts(path: str | os.PathLike) -> ModelFacts:
    """Read :class:`ModelFacts` from a GGUF file's header (no tensor data is read).

    Uses the project's validating reader (``enigma_edge.gguf``) when this build has it, else
    gguf-py's GGUFReader (much slower on big vocabularies); ``reader`` says which. A malformed
    file raises ValueError naming it; a missing one, OSError.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        return _model_facts(path)
    except OSError:
        raise
    except Exception as exc:  # each reader has its own error types for a malformed header
        raise ValueError(f"{path}: not a readable GGUF file: {type(exc).__name__}: {exc}") from None


def _model_facts(path: Path) -> ModelFacts:
    try:
        from . import gguf as ee_gguf
        ee_gguf.open  # noqa: B018 - the attribute is the feature test
    except (ImportError, AttributeError):
        ee_gguf = None
    if ee_gguf is not None:
        with ee_gguf.open(path) as f:
            md = f.metadata
            weights = sum(t.nbytes for t in f.tensors.values())
            tokens = md.get("tokenizer.ggml.tokens")
            n_tok = len(tokens) if tokens is not None else 0
            return _facts(path, md.get, weights, n_tok, "enigma_edge.gguf")
    try:
        from gguf import GGUFReader
    except ImportError:
        raise RuntimeError("reading GGUF metadata needs enigma_edge.gguf (not in this build) or the "
                           "gguf package (pip install gguf)") from None
    r = GGUFReader(str(path))

    def get(key, default=None):
        f = r.fields.get(key)
        return default if f is None else f.contents()

    weights = sum(int(t.n_bytes) for t in r.tensors)
    tok = r.fields.get("tokenizer.ggml.tokens")
    return _facts(path, get, weights, len(tok.data) if tok is not None else 0, "gguf-py")


def _facts(path: Path, get, weights: int, n_tokens: int, reader: str) -> ModelFacts:
    arch = get("general.architecture")
    if not arch:
        raise ValueError(f"{path}: GGUF has no general.architecture")

    def need(key):
        v = get(f"{arch}.{key}")
        if v is None:
            raise ValueError(f"{path}: GGUF lacks {arch}.{key}")
        return int(v)

    n_embd, n_head = need("embedding_length"), need("attention.head_count")
    n_kv = get(f"{arch}.attention.head_count_kv")
    hk = get(f"{arch}.attention.key_length")
    hv = get(f"{arch}.attention.value_length")
    return ModelFacts(
        name=path.stem, arch=str(arch), weights_bytes=int(weights), n_layer=need("block_count"),
        n_ctx_train=need("context_length"), n_embd=n_embd, n_head=n_head,
        n_kv_heads=int(n_kv) if n_kv is not None else n_head,
        head_dim_k=int(hk) if hk is not None else n_embd // n_head,
        head_dim_v=int(hv) if hv is not None else n_embd // n_head,
        n_ff=int(get(f"{arch}.feed_forward_length") or 4 * n_embd),
        n_vocab=int(get(f"{arch}.vocab_size") or n_tokens), reader=reader)


def kv_bytes(m: ModelFacts, n_ctx: int, kv_type: str) -> int:
    """K and V caches: n_layer * n_ctx * n_kv_heads * (head_dim_k + head_dim_v) * bytes(kv_type)."""
    return int(m.n_layer * n_ctx * m.n_kv_heads * (m.head_dim_k + m.head_dim_v) * KV_TYPE_BYTES[kv_type])


def scratch_bytes(m: ModelFacts, n_ctx: int) -> int:
    acts = UBATCH * (4 * m.n_embd + 2 * m.n_ff + m.n_head * m.head_dim_k + 2 * m.n_kv_heads * m.head_dim_k)
    return 4 * (acts + m.n_head * n_ctx + m.n_vocab) + RUNTIME_OVERHEAD


@dataclass(frozen=True)
class Plan:
    decision: str            # load | smaller_kv | shorter_ctx | offload | refuse
    model: str
    n_ctx: int
    kv_type: str
    weights: int
    kv: int
    scratch: int
    budget: int              # MemAvailable - reserve
    mem_available: int
    peer: str | None
    message: str

    @property
    def need(self) -> int:
        return self.weights + self.kv + self.scratch

    @property
    def local(self) -> bool:
        return self.decision in ("load", "smaller_kv", "shorter_ctx")


def _mb(n: int | float) -> str:
    return f"{n / MiB:.1f} MB"


def plan_model(m: ModelFacts, profile, mem_available: int, peers: list[str] | tuple = (),
               n_ctx: int | None = None, kv_type: str | None = None, offload: str | None = None) -> Plan:
    """Decide how (and whether) to run model ``m`` on ``profile`` with ``mem_available`` bytes free.

    ``n_ctx``, ``kv_type`` and ``offload`` override the profile's values (e.g. from the command line).
    """
    policy = offload or profile.llm.offload
    want_ctx = min(n_ctx or profile.llm.n_ctx, m.n_ctx_train)
    want_kv = kv_type or profile.llm.kv_type
    if want_kv not in KV_TYPE_BYTES:
        raise ValueError(f"unknown KV cache type {want_kv!r} (choose from {', '.join(KV_TYPE_BYTES)})")
    reserve = profile.memory.reserve_mb * MiB
    budget = mem_available - reserve
    peer = peers[0] if peers else None

    def make(decision, ctx, kv, why):
        kvb, scr = kv_bytes(m, ctx, kv), scratch_bytes(m, ctx)
        need = m.weights_bytes + kvb + scr
        nums = (f"{m.name} needs {_mb(need)} = weights {_mb(m.weights_bytes)} + KV {_mb(kvb)} "
                f"({ctx} tokens x {kv}) + scratch {_mb(scr)}; budget {_mb(budget)} = MemAvailable "
                f"{_mb(mem_available)} - reserve {_mb(reserve)} ({profile.name})")
        return Plan(decision, m.name, ctx, kv, m.weights_bytes, kvb, scr, budget, mem_available,
                    peer if decision == "offload" else None, f"{decision}: {why}. {nums}")

    def fits(ctx, kv):
        return m.weights_bytes + kv_bytes(m, ctx, kv) + scratch_bytes(m, ctx) <= budget

    def elsewhere(why):
        if policy != "never" and peer:
            return make("offload", want_ctx, want_kv, f"{why}; generating on peer {peer}")
        if policy == "never":
            return make("refuse", want_ctx, want_kv, f"{why}; offload policy is 'never'")
        return make("refuse", want_ctx, want_kv,
                    f"{why}; offload policy is '{policy}' but no peer is configured "
                    f"([[offload.peers]] in the config file)")

    if policy == "always":
        return elsewhere(f"profile {profile.name} offloads always")
    limit = profile.llm.max_local_model_mb * MiB
    if m.weights_bytes > limit:
        return elsewhere(f"weights {_mb(m.weights_bytes)} exceed {profile.name}'s local limit "
                         f"max_local_model_mb = {profile.llm.max_local_model_mb}")
    if fits(want_ctx, want_kv):
        return make("load", want_ctx, want_kv, f"fits as configured ({want_ctx} tokens, {want_kv} KV)")
    smaller = [k for k in KV_FALLBACK if KV_TYPE_BYTES[k] < KV_TYPE_BYTES[want_kv]]
    for kv in smaller:
        if fits(want_ctx, kv):
            return make("smaller_kv", want_ctx, kv, f"{want_ctx} tokens with {want_kv} KV do not fit "
                        f"({_mb(kv_bytes(m, want_ctx, want_kv))} of KV); {kv} KV does")
    kv = smaller[-1] if smaller else want_kv
    ctx = want_ctx // 2
    while ctx >= profile.llm.min_ctx:
        if fits(ctx, kv):
            return make("shorter_ctx", ctx, kv, f"{want_ctx} tokens do not fit even with {kv} KV; "
                        f"context shortened to {ctx}")
        ctx //= 2
    return elsewhere(f"does not fit even at {profile.llm.min_ctx} tokens with {kv} KV "
                     f"(needs {_mb(m.weights_bytes + kv_bytes(m, profile.llm.min_ctx, kv) + scratch_bytes(m, profile.llm.min_ctx))})")


# ------------------------------------------------------------------------------------------------
# thermal

# `vcgencmd get_throttled` bits (Raspberry Pi documentation, "vcgencmd").
THROTTLED_BITS = {
    0: "under-voltage", 1: "arm frequency capped", 2: "currently throttled", 3: "soft temperature limit",
    16: "under-voltage has occurred", 17: "frequency capping has occurred",
    18: "throttling has occurred", 19: "soft temperature limit has occurred",
}
THROTTLED_NOW_HOT = (1 << 2) | (1 << 3)   # throttled / soft temp limit active right now


def parse_throttled(text: str) -> int:
    """``throttled=0x50005`` -> 0x50005.

    >>> hex(parse_throttled("throttled=0x50005"))
    '0x50005'
    """
    m = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    if not m:
        raise ValueError(f"unexpected vcgencmd output: {text.strip()!r}")
    return int(m.group(1), 0)


def throttled_flags(value: int) -> list[str]:
    return [name for bit, name in THROTTLED_BITS.items() if value >> bit & 1]


def vcgencmd_throttled() -> int | None:
    """Run ``vcgencmd get_throttled`` if the tool exists (Raspberry Pi OS); None otherwise."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=5, check=True)
        return parse_throttled(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.warning("vcgencmd get_throttled failed: %s", exc)
        return None


def read_temperatures(root: str | os.PathLike = "/") -> dict[str, float]:
    """``{zone type: degrees C}`` from sys/class/thermal/thermal_zone*/temp under root."""
    out = {}
    for zone in sorted((Path(root) / "sys/class/thermal").glob("thermal_zone*")):
        try:
            milli = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            kind = (zone / "type").read_text().strip()
        except OSError:
            kind = zone.name
        out[f"{zone.name}:{kind}"] = milli / 1000.0
    return out


class ThermalWatcher:
    """Lowers LLM threads when the SoC is hot and restores them when it cools (with hysteresis).

    ``on_change(threads, reason)`` is called for every change. ``throttled`` is a callable giving
    the firmware's throttled bits or None (default: ``vcgencmd get_throttled`` on a real root, none
    for a recorded tree). Drive it with :meth:`poll` or run it in a thread with :meth:`start`.

    >>> from enigma_edge import boards
    >>> w = ThermalWatcher(boards.load_profile("pi_5"), lambda n, why: print(n, why), root="/nonexistent")
    >>> w.poll()
    3
    >>> w.close(); w.close()
    """

    def __init__(self, profile, on_change: Callable[[int, str], None], root: str | os.PathLike = "/",
                 threads: int | None = None, throttled: Callable[[], int | None] | None = None):
        t = profile.thermal
        self.throttle_c, self.restore_c = t.throttle_c, t.restore_c
        self.min_threads, self.poll_s = t.min_threads, t.poll_s
        self.max_threads = threads or profile.llm_threads()
        self.threads = self.max_threads
        self.root = Path(root)
        self.on_change = on_change
        if throttled is None:
            throttled = vcgencmd_throttled if str(root) == "/" else (lambda: None)
        self._throttled = throttled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_voltage = False
        self._warned_sensor = False
        self.last_temp: float | None = None
        self.last_throttled: int | None = None

    def poll(self) -> int:
        """Read the sensors once, adjust the thread count if needed; returns the current count."""
        temps = read_temperatures(self.root)
        temp = max(temps.values()) if temps else None
        flags = self._throttled()
        self.last_temp, self.last_throttled = temp, flags
        if temp is None and flags is None:
            if not self._warned_sensor:
                log.info("thermal: no sensor under %s (no thermal zones, no vcgencmd); threads stay %d",
                         self.root, self.threads)
                self._warned_sensor = True
            return self.threads
        if flags and flags & 1 and not self._warned_voltage:
            log.warning("thermal: firmware reports under-voltage (throttled=%#x: %s); use a better supply",
                        flags, ", ".join(throttled_flags(flags)))
            self._warned_voltage = True
        fw_hot = bool(flags and flags & THROTTLED_NOW_HOT)
        t = f"{temp:.1f} C" if temp is not None else "no temperature"
        if (temp is not None and temp >= self.throttle_c) or fw_hot:
            if self.threads > self.min_threads:
                why = (f"{t} >= throttle {self.throttle_c:.1f} C" if temp is not None and temp >= self.throttle_c
                       else f"firmware throttling ({', '.join(throttled_flags(flags))})")
                self._set(self.threads - 1, why)
        elif temp is not None and temp <= self.restore_c and not fw_hot:
            if self.threads < self.max_threads:
                self._set(self.threads + 1, f"{t} <= restore {self.restore_c:.1f} C")
        return self.threads

    def _set(self, n: int, why: str) -> None:
        old, self.threads = self.threads, n
        log.info("thermal: LLM threads %d -> %d (%s)", old, n, why)
        self.on_change(n, why)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # a bad reading must not kill the watcher
                log.exception("thermal: poll failed")
            self._stop.wait(self.poll_s)

    def start(self) -> "ThermalWatcher":
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="thermal-watcher", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the background thread (safe to call twice)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "ThermalWatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
