"""The voice loop: idle -> wake -> listen -> transcribe -> handle -> speak -> idle.

The handler is the assistant's hook::

    def handler(transcript: Transcript) -> Iterable[str]:
        yield "The kitchen light "      # reply text in chunks, as an LLM streams it
        yield "is on."

It is called (in a worker thread) only with accepted, non-empty transcripts; each complete
sentence of its output is synthesized and played while the rest is still being produced.

Rules the loop keeps:
- the source is read one 10 ms frame at a time; the sink gets 10 ms of reply audio per frame
  read, so playback and listening share one clock;
- barge-in: the wake word during playback stops playback (``sink.stop()``), cancels the rest of
  the reply and starts listening again;
- no self-wake: the detector is muted while we play a sentence that contains a wake phrase
  (and during all playback when ``barge_in=False``);
- every wait has a timeout that returns to idle: no speech after the wake word (``no_speech_s``),
  an utterance too long (``max_utterance_s``: transcribed as is), a handler/TTS that produces
  nothing for ``handler_timeout_s``; errors in the handler are reported and the loop goes idle;
- per-turn timings (:class:`Turn`) are logged and kept in ``pipeline.turns``.

Sources that are not real time (files) are never dropped: while the worker thinks, the loop
waits for it instead of reading ahead.

>>> from enigma_edge.voice.pipeline import VoicePipeline         # doctest: +SKIP
>>> p = VoicePipeline(WavSource("in.wav"), BufferSink(), WakeWord(), PocketSphinxSTT(),
...                   PiperTTS(), handler=lambda tr: ["You said " + tr.text + "."])
>>> p.run(); [e.kind for e in p.events]
['wake', 'speech', 'end_of_speech', 'transcript', 'audio_start', 'done']
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

from . import FRAME_BYTES, FRAME_SAMPLES, RATE
from .commands import WAKE_PHRASES, normalize

log = logging.getLogger(__name__)

Handler = Callable[["Transcript"], Iterable[str]]  # noqa: F821 (stt.Transcript)

IDLE, LISTENING, THINKING, SPEAKING = "idle", "listening", "thinking", "speaking"


@dataclass
class Event:
    kind: str        # wake, speech, partial, end_of_speech, transcript, rejected, audio_start,
                     # barge_in, timeout, error, done
    t: float         # audio time of the source when it happened (s)
    data: dict = field(default_factory=dict)

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v:.3f}" if isinstance(v, float)
                         else f"{k}={v}" for k, v in self.data.items())
        return f"[{self.t:7.2f}s] {self.kind:13s} {extra}".rstrip()


@dataclass
class Turn:
    """Timings of one wake -> reply turn (audio-clock times in s; *_s durations in wall s)."""
    wake_t: float
    wake_model: str = ""
    speech_start_t: float | None = None
    end_of_speech_t: float | None = None
    transcript: str = ""
    wake_to_eos_s: float | None = None     # audio time from wake to end of speech
    stt_s: float | None = None             # wall: end of speech -> transcript
    handler_first_s: float | None = None   # wall: transcript -> first reply text
    handler_s: float | None = None         # wall: transcript -> handler finished
    first_audio_s: float | None = None     # wall: end of speech -> first reply audio written
    reply_audio_s: float = 0.0             # seconds of reply audio played
    outcome: str = ""                      # done, rejected, timeout:<stage>, barge_in, error

    def as_dict(self) -> dict:
        return asdict(self)


class VoicePipeline:
    def __init__(self, source, sink, wake, stt, tts, handler: Handler, *, barge_in: bool = True,
                 no_speech_s: float = 4.0, max_utterance_s: float = 10.0, silence_ms: int = 700,
                 vad_aggressiveness: int = 2, handler_timeout_s: float = 30.0,
                 on_event: Callable[[Event], None] | None = None):
        from .vad import EndOfSpeech
        if source.rate != RATE:
            raise ValueError(f"pipeline sources must be {RATE} Hz, got {source.rate}")
        if getattr(tts, "rate", sink.rate) != sink.rate:
            raise ValueError(f"TTS rate {tts.rate} != sink rate {sink.rate}: build PiperTTS(rate=sink.rate)")
        self.source, self.sink, self.wake, self.stt, self.tts = source, sink, wake, stt, tts
        self.handler = handler
        self.barge_in = barge_in
        self.handler_timeout_s = handler_timeout_s
        self.vad = EndOfSpeech(vad_aggressiveness, silence_ms=silence_ms, no_speech_s=no_speech_s,
                               max_utterance_s=max_utterance_s)
        self.on_event = on_event
        self.state = IDLE
        self.events: list[Event] = []
        self.turns: list[Turn] = []
        self._turn: Turn | None = None
        self._stream = None
        self._q: queue.Queue | None = None
        self._cancel: threading.Event | None = None
        self._worker_done = True
        self._play = bytearray()          # reply audio waiting to be played (sink rate)
        self._play_texts: list[tuple[int, str]] = []   # (bytes left when the sentence ends, text)
        self._last_output = 0.0
        self._eos_wall = 0.0
        self._transcript_wall = 0.0
        self._sink_start = 0
        self._stop = threading.Event()
        self._out_frame = FRAME_SAMPLES * sink.rate // RATE * 2   # bytes of output per input frame

    # -- events and turns ------------------------------------------------------------------
    def _emit(self, kind: str, **data) -> None:
        ev = Event(kind, self.source.time_s, data)
        self.events.append(ev)
        log.info("%s", ev)
        if self.on_event:
            self.on_event(ev)

    def _end_turn(self, outcome: str) -> None:
        t = self._turn
        if t is not None:
            t.outcome = outcome
            self.turns.append(t)
            log.info("turn %s: %s", outcome, {k: v for k, v in t.as_dict().items() if v is not None})
        self._turn = None
        if self._cancel is not None:
            self._cancel.set()
        self._q, self._cancel, self._stream = None, None, None
        self._worker_done = True
        self._play.clear()
        self._play_texts.clear()
        self.wake.muted = False
        self.state = IDLE

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current frame (thread-safe)."""
        self._stop.set()

    # -- stages --------------------------------------------------------------------------------
    def _start_listening(self, det) -> None:
        self._turn = Turn(wake_t=self.source.time_s, wake_model=det.model)
        self.vad.reset()
        self._stream = self.stt.stream()
        self.state = LISTENING

    def _on_idle(self, frame: bytes) -> None:
        det = self.wake.feed(frame)
        if det is not None:
            self._emit("wake", model=det.model, probability=det.probability)
            self._start_listening(det)

    def _on_listening(self, frame: bytes) -> None:
        self.wake.feed(frame)          # keeps the detector's clock in step; a wake here is ignored
        partial = self._stream.feed(frame)
        if partial:
            self._emit("partial", text=partial)
        ev = self.vad.feed(frame)
        if ev == "speech":
            self._turn.speech_start_t = self.source.time_s - self.vad.frames * 0.01 + self.vad.speech_start_s
            self._emit("speech")
        elif ev == "no_speech":
            self._emit("timeout", stage="listen", reason="no speech after the wake word")
            self._end_turn("timeout:listen")
        elif ev in ("end", "max_length"):
            t = self._turn
            t.end_of_speech_t = self.source.time_s
            t.wake_to_eos_s = t.end_of_speech_t - t.wake_t
            self._emit("end_of_speech", reason=ev)
            self._start_worker()

    def _start_worker(self) -> None:
        self._eos_wall = self._last_output = time.perf_counter()
        q, cancel = queue.Queue(), threading.Event()
        self._q, self._cancel, self._worker_done = q, cancel, False
        stream = self._stream
        threading.Thread(target=self._work, args=(stream, q, cancel), daemon=True,
                         name="voice-turn").start()
        self.state = THINKING

    def _work(self, stream, q: queue.Queue, cancel: threading.Event) -> None:
        """Worker: transcript -> handler -> sentences -> audio, all into ``q``."""
        try:
            tr = stream.finish()
            q.put(("transcript", tr, time.perf_counter()))
            if tr.rejected or not tr.text or cancel.is_set():
                q.put(("done", None, time.perf_counter()))
                return

            def texts():
                for chunk in self.handler(tr):
                    if cancel.is_set():
                        return
                    q.put(("text", chunk, time.perf_counter()))
                    yield chunk
                q.put(("handler_done", None, time.perf_counter()))

            for sc in self.tts.stream(texts()):
                if cancel.is_set():
                    return
                q.put(("audio", sc, time.perf_counter()))
            q.put(("done", None, time.perf_counter()))
        except Exception as exc:  # reported by the loop as an "error" event, then idle
            log.exception("voice turn failed")
            q.put(("error", exc, time.perf_counter()))

    def _drain_worker(self, block: bool) -> None:
        """Take worker outputs; with ``block`` wait (bounded by the handler timeout) for one."""
        q = self._q
        while q is not None and q is self._q:
            try:
                if block:
                    left = self.handler_timeout_s - (time.perf_counter() - self._last_output)
                    kind, payload, when = q.get(timeout=max(left, 0.0))
                    block = False
                else:
                    kind, payload, when = q.get_nowait()
            except queue.Empty:
                return
            self._last_output = time.perf_counter()
            self._worker_output(kind, payload, when)

    def _worker_output(self, kind: str, payload, when: float) -> None:
        t = self._turn
        if kind == "transcript":
            t.transcript = payload.text
            t.stt_s = when - self._eos_wall
            self._transcript_wall = when
            if payload.rejected or not payload.text:
                self._emit("rejected", heard=payload.raw, stt_s=t.stt_s)
            else:
                self._emit("transcript", text=payload.text, stt_s=t.stt_s)
        elif kind == "text":
            if t.handler_first_s is None:
                t.handler_first_s = when - self._transcript_wall
        elif kind == "handler_done":
            t.handler_s = when - self._transcript_wall
        elif kind == "audio":
            if t.first_audio_s is None:
                t.first_audio_s = time.perf_counter() - self._eos_wall
                self._sink_start = self.sink.samples_written
                self._emit("audio_start", first_audio_s=t.first_audio_s)
            self._play += payload.pcm
            self._play_texts.append((len(self._play), normalize(payload.text)))
            self.state = SPEAKING
        elif kind == "done":
            self._worker_done = True
            if self.state == THINKING:      # nothing to say (rejected or empty reply)
                self._finish_turn("rejected" if not t.transcript else "done")
        elif kind == "error":
            self._emit("error", error=f"{type(payload).__name__}: {payload}")
            self._end_turn("error")

    def _finish_turn(self, outcome: str) -> None:
        if outcome == "done":
            self._emit("done", **{k: v for k, v in self._turn.as_dict().items()
                                  if k.endswith("_s") and v is not None})
        self._end_turn(outcome)

    def _check_stall(self) -> bool:
        if time.perf_counter() - self._last_output > self.handler_timeout_s:
            self._emit("timeout", stage=self.state, reason=f"no reply for {self.handler_timeout_s:.1f} s")
            self.sink.stop()
            self._end_turn(f"timeout:{self.state}")
            return True
        return False

    def _on_speaking(self, frame: bytes) -> None:
        # which sentence is playing now? mute the detector if it says a wake phrase (no self-wake)
        played = self._out_frame
        if self.barge_in:
            now = self._play_texts[0][1] if self._play_texts else ""
            self.wake.muted = any(p in now for p in WAKE_PHRASES.values())
        else:
            self.wake.muted = True
        det = self.wake.feed(frame)
        if det is not None:
            self.sink.stop()
            t = self._turn
            t.reply_audio_s += (self.sink.samples_written - self._sink_start) / self.sink.rate
            self._emit("barge_in", model=det.model, probability=det.probability)
            self._end_turn("barge_in")
            self._emit("wake", model=det.model, probability=det.probability)
            self._start_listening(det)
            return
        if self._play:
            out = bytes(self._play[:played])
            del self._play[:played]
            self._play_texts = [(n - len(out), s) for n, s in self._play_texts if n - len(out) > 0]
            self.sink.write(out)
            self._last_output = time.perf_counter()
        if not self._play and self._worker_done:
            self.sink.drain()
            self._turn.reply_audio_s += (self.sink.samples_written - self._sink_start) / self.sink.rate
            self._finish_turn("done")

    # -- main loop -----------------------------------------------------------------------------
    def step(self, frame: bytes) -> None:
        """Process one 10 ms input frame."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"frames must be {FRAME_BYTES} bytes (10 ms at 16 kHz)")
        if self.state == IDLE:
            self._on_idle(frame)
            return
        if self.state == LISTENING:
            self._on_listening(frame)
            return
        # thinking / speaking: take what the worker produced
        if not self.source.realtime and self.state == THINKING or \
                (self.state == SPEAKING and not self._play and not self._worker_done and not self.source.realtime):
            self._drain_worker(block=True)
        else:
            self._drain_worker(block=False)
        if self.state in (THINKING, SPEAKING) and self._check_stall():
            return
        if self.state == THINKING:
            self.wake.feed(frame)      # keep the detector's clock; a wake here is ignored
        elif self.state == SPEAKING:
            self._on_speaking(frame)

    def run(self, max_s: float | None = None) -> list[Event]:
        """Read the source until it ends (or ``max_s`` of audio, or :meth:`stop`); returns events.
        A turn still open at the end of a finite source is played out / timed out first."""
        self._stop.clear()
        while not self._stop.is_set():
            if max_s is not None and self.source.time_s >= max_s:
                break
            frame = self.source.read(FRAME_SAMPLES)
            if frame is None:
                break
            self.step(frame)
        # a file ended mid-turn: feed silence so the turn completes (bounded by the VAD/handler limits)
        silence = b"\x00" * FRAME_BYTES
        guard = int((self.vad.no_speech_frames + self.vad.max_frames) + 100)
        while self.state != IDLE and not self._stop.is_set() and guard > 0:
            self.source.samples_read += FRAME_SAMPLES
            self.step(silence)
            guard -= 1 if self.state in (IDLE, LISTENING) else 0
        return self.events


# -- `enigma-edge listen --wav FILE` ----------------------------------------------------------

def echo_handler(transcript) -> Iterable[str]:
    """The CLI's stand-in for the assistant: confirms a command, repeats anything else."""
    from .commands import match_command
    intent = match_command(transcript.text)
    if intent:
        yield f"Okay, {transcript.text}."
    else:
        yield f"You said: {transcript.text}."


def configure(parser) -> None:
    parser.add_argument("--wav", required=True, help="input WAV (any rate; mixed down to 16 kHz mono)")
    parser.add_argument("--stt", default="pocketsphinx", choices=["pocketsphinx", "whisper", "vosk"],
                        help="speech-to-text backend (default pocketsphinx with the command grammar)")
    parser.add_argument("--vosk-model", help="vosk model directory (with --stt vosk)")
    parser.add_argument("--wake", default="okay_nabu", help="wake-word model (okay_nabu, hey_jarvis, ...)")
    parser.add_argument("--wake-engine", default="micro", choices=["micro", "open"])
    parser.add_argument("--reply-wav", help="write the spoken replies to this WAV")
    parser.add_argument("--no-speech", type=float, default=4.0, help="seconds to wait for speech after the wake word")
    parser.add_argument("--max-utterance", type=float, default=10.0, help="longest utterance in seconds")
    parser.set_defaults(func=run_listen)


def run_listen(args) -> int:
    import json
    from .audio import BufferSink, WavSink, WavSource
    from .stt import make_stt
    from .tts import PiperTTS
    from .wake import WakeWord
    opts = {"model_dir": args.vosk_model} if args.stt == "vosk" else {}
    if args.stt == "vosk" and not args.vosk_model:
        raise ValueError("--stt vosk needs --vosk-model DIR")
    t0 = time.perf_counter()
    with WavSource(args.wav) as src, \
            (WavSink(args.reply_wav) if args.reply_wav else BufferSink()) as sink, \
            WakeWord(args.wake, engine=args.wake_engine) as wake, \
            make_stt(args.stt, **opts) as stt, PiperTTS(rate=sink.rate) as tts:
        load_s = time.perf_counter() - t0
        print(f"loaded engines in {load_s:.2f} s; listening to {args.wav} ({src.duration_s:.2f} s)", flush=True)
        p = VoicePipeline(src, sink, wake, stt, tts, echo_handler, no_speech_s=args.no_speech,
                          max_utterance_s=args.max_utterance,
                          on_event=lambda e: print(e, flush=True))
        p.run()
    for i, t in enumerate(p.turns, 1):
        d = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in t.as_dict().items() if v not in (None, "")}
        print(f"turn {i} timings: {json.dumps(d)}")
    if not p.turns:
        print("no wake word heard")
    return 0
