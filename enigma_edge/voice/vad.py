"""End-of-speech detection with webrtcvad (``webrtcvad-wheels``) and hard timeouts.

After the wake word the pipeline feeds 10 ms frames; the detector reports:

- ``"speech"`` once, when speech starts (``start_ms`` of voiced audio in a row),
- ``"end"`` when ``silence_ms`` of silence follow speech,
- ``"no_speech"`` when nothing was said within ``no_speech_s`` (back to idle),
- ``"max_length"`` when the utterance runs past ``max_utterance_s`` (never stuck listening).

>>> from enigma_edge.voice.vad import EndOfSpeech
>>> eos = EndOfSpeech(no_speech_s=0.05)
>>> [eos.feed(b"\\x00\\x00" * 160) for _ in range(5)][-1]
'no_speech'
"""
from __future__ import annotations

from . import FRAME_BYTES, FRAME_SAMPLES, RATE


class EndOfSpeech:
    def __init__(self, aggressiveness: int = 2, *, start_ms: int = 60, silence_ms: int = 700,
                 no_speech_s: float = 4.0, max_utterance_s: float = 10.0):
        import webrtcvad
        if not 0 <= aggressiveness <= 3:
            raise ValueError("webrtcvad aggressiveness must be 0..3")
        self._vad = webrtcvad.Vad(aggressiveness)
        self.start_frames = max(1, start_ms // 10)
        self.silence_frames = max(1, silence_ms // 10)
        self.no_speech_frames = int(no_speech_s * 100)
        self.max_frames = int(max_utterance_s * 100)
        self.reset()

    def reset(self) -> None:
        self.frames = 0            # frames since reset
        self.in_speech = False
        self.done = False
        self._voiced_run = 0
        self._silent_run = 0
        self.speech_start_frame: int | None = None
        self.speech_end_frame: int | None = None

    @property
    def speech_start_s(self) -> float | None:
        f = self.speech_start_frame
        return None if f is None else f * FRAME_SAMPLES / RATE

    def is_speech(self, frame: bytes) -> bool:
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"VAD frames must be 10 ms ({FRAME_BYTES} bytes), got {len(frame)}")
        return self._vad.is_speech(frame, RATE)

    def feed(self, frame: bytes) -> str | None:
        """Feed one 10 ms frame; returns an event name or None (see module doc)."""
        if self.done:
            return None
        self.frames += 1
        voiced = self.is_speech(frame)
        if not self.in_speech:
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= self.start_frames:
                self.in_speech = True
                self.speech_start_frame = self.frames - self._voiced_run
                self._silent_run = 0
                return "speech"
            if self.frames >= self.no_speech_frames:
                self.done = True
                return "no_speech"
        else:
            self._silent_run = 0 if voiced else self._silent_run + 1
            if self._silent_run >= self.silence_frames:
                self.done = True
                self.speech_end_frame = self.frames - self._silent_run
                return "end"
        if self.frames >= self.max_frames:
            self.done = True
            self.speech_end_frame = self.frames
            return "max_length"
        return None
