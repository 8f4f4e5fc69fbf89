"""Wake word: microWakeWord (``pymicro-wakeword``, default) or openWakeWord (``pyopen-wakeword``).

Both wheels bundle their TFLite runtime and the okay_nabu, hey_jarvis, hey_mycroft and alexa
models. microWakeWord uses each model's published probability cutoff (from the model's JSON:
okay_nabu 0.85, hey_jarvis 0.97, hey_mycroft 0.95, alexa 0.9); openWakeWord uses its usual 0.5.

Feed 10 ms frames; ``feed`` returns a :class:`Detection` once per utterance: after a detection
the model's probability must stay below its cutoff for ``rearm_s`` and ``refractory_s`` of audio must pass
before it can fire again. While ``muted`` (we are speaking) frames
still advance the detector's clock but can never fire (no self-wake).

>>> from enigma_edge.voice.wake import WakeWord
>>> with WakeWord("okay_nabu") as ww:                       # doctest: +SKIP
...     hits = [d for f in frames if (d := ww.feed(f))]
"""
from __future__ import annotations

from dataclasses import dataclass

from . import RATE, WIDTH

MICRO_MODELS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")
OPEN_MODELS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa", "hey_rhasspy")
OPEN_CUTOFF = 0.5
OPEN_STEP_BYTES = 1280 * WIDTH   # 80 ms


@dataclass
class Detection:
    model: str
    probability: float
    time_s: float        # audio time (detector clock) when it fired


class WakeWord:
    """One or more wake-word models of one engine (``engine`` = "micro" or "open")."""

    def __init__(self, models: str | list[str] = "okay_nabu", *, engine: str = "micro",
                 cutoff: float | None = None, refractory_s: float = 2.0, rearm_s: float = 0.5):
        self.models = [models] if isinstance(models, str) else list(models)
        if not self.models:
            raise ValueError("WakeWord: no model given")
        self.engine, self.refractory_s, self.rearm_s = engine, refractory_s, rearm_s
        self.muted = False
        self.samples = 0
        self._last_fire = -1e9
        self.closed = False
        if engine == "micro":
            from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model
            for m in self.models:
                if m not in MICRO_MODELS:
                    raise ValueError(f"unknown microWakeWord model {m!r}; bundled: {', '.join(MICRO_MODELS)}")
            self._detectors = [MicroWakeWord.from_builtin(Model(m)) for m in self.models]
            self.cutoffs = [cutoff if cutoff is not None else d.probability_cutoff for d in self._detectors]
            self._features = MicroWakeWordFeatures()
        elif engine == "open":
            from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures
            for m in self.models:
                if m not in OPEN_MODELS:
                    raise ValueError(f"unknown openWakeWord model {m!r}; bundled: {', '.join(OPEN_MODELS)}")
            self._detectors = [OpenWakeWord.from_builtin(Model(m)) for m in self.models]
            self.cutoffs = [OPEN_CUTOFF if cutoff is None else cutoff] * len(self.models)
            self._features = OpenWakeWordFeatures.from_builtin()
        else:
            raise ValueError(f"unknown wake-word engine {engine!r} (micro or open)")
        self.max_probability = [0.0] * len(self.models)
        self._armed = [True] * len(self.models)
        self._below_since: list[float | None] = [0.0] * len(self.models)
        self._pending = bytearray()

    @property
    def time_s(self) -> float:
        return self.samples / RATE

    def _probabilities(self, pcm: bytes):
        """Yield (model index, probability) for every model output this audio produced."""
        if self.engine == "micro":
            for feats in self._features.process_streaming(pcm):
                for i, d in enumerate(self._detectors):
                    p = d.process_streaming_prob(feats)
                    if p is not None:
                        yield i, p
        else:
            # openWakeWord works on 80 ms steps; smaller pieces only add overhead
            self._pending += pcm
            if len(self._pending) < OPEN_STEP_BYTES:
                return
            pcm, self._pending = bytes(self._pending), bytearray()
            for emb in self._features.process_streaming(pcm):
                for i, d in enumerate(self._detectors):
                    for p in d.process_streaming(emb):
                        yield i, p

    def feed(self, pcm: bytes) -> Detection | None:
        """Feed 16 kHz int16 mono audio (10 ms frames for micro; any size works)."""
        if self.closed:
            raise RuntimeError("WakeWord is closed")
        self.samples += len(pcm) // WIDTH
        hit = None
        for i, p in self._probabilities(pcm):
            if p > self.max_probability[i]:
                self.max_probability[i] = p
            if p <= self.cutoffs[i]:
                # re-arm once the probability has stayed below the cutoff for rearm_s
                # (it dips and recovers inside one utterance)
                if self._below_since[i] is None:
                    self._below_since[i] = self.time_s
                if self.time_s - self._below_since[i] >= self.rearm_s:
                    self._armed[i] = True
                continue
            self._below_since[i] = None
            if self.muted:
                self._armed[i] = False         # heard while muted: this utterance never fires
            elif hit is None and self._armed[i] and self.time_s - self._last_fire >= self.refractory_s:
                hit = Detection(self.models[i], float(p), self.time_s)
                self._armed[i] = False
        if hit is not None:
            self._last_fire = hit.time_s
        return hit

    def reset(self) -> None:
        """Forget internal state (after a detection the caller may want a clean slate)."""
        self._features.reset()
        self._pending = bytearray()
        for d in self._detectors:
            d.reset()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for d in self._detectors:
                d.close()
            if self.engine == "open":
                self._features.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
