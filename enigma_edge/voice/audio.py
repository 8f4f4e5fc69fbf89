"""Audio sources and sinks: 16 kHz mono int16 frames in, PCM out.

A source yields fixed-size frames (default 10 ms = 160 samples = 320 bytes) until it ends
(``read`` returns None). A sink accepts PCM at its ``rate``; ``stop()`` drops what is queued
(barge-in) and ``drain()`` waits until everything written has been played.

Implementations: sounddevice/PortAudio (microphone, speaker; imported lazily), WAV files, an
in-memory buffer sink, and a generator source for tests. The PortAudio source survives device
loss: a failed read closes the stream and reopens it with exponential backoff, re-scanning the
devices each time (USB microphones come back under a new index).

>>> from enigma_edge.voice.audio import GeneratorSource, BufferSink
>>> src = GeneratorSource([b"\\x00\\x00" * 400])
>>> [len(f) for f in src.frames()]
[320, 320, 320]
>>> sink = BufferSink(); sink.write(b"\\x01\\x00" * 10); len(sink.data)
20
"""
from __future__ import annotations

import logging
import threading
import time
import wave
from pathlib import Path
from typing import Iterable, Iterator

from . import FRAME_SAMPLES, RATE, WIDTH

log = logging.getLogger(__name__)


def _sounddevice():
    """Import sounddevice, turning a missing PortAudio into one clear error."""
    try:
        import sounddevice
    except OSError as exc:   # sounddevice raises OSError('PortAudio library not found')
        raise RuntimeError("sounddevice cannot load PortAudio: install the system package "
                           "libportaudio2 (sudo apt-get install libportaudio2)") from exc
    except ImportError as exc:
        raise RuntimeError("the 'sounddevice' package is missing: pip install 'enigma-edge[voice]'") from exc
    return sounddevice


# -- interfaces ------------------------------------------------------------------------------

class AudioSource:
    """Base class: subclasses implement ``_read(n_samples) -> bytes | None``.

    ``realtime`` says whether the source is paced by a clock (a microphone) or can be read
    as fast as we like (a file); the pipeline waits for slow stages instead of dropping audio
    when the source is not real time.
    """
    rate: int = RATE
    realtime: bool = False

    def __init__(self):
        self.closed = False
        self.samples_read = 0

    def _read(self, n: int) -> bytes | None:
        raise NotImplementedError

    def read(self, n: int = FRAME_SAMPLES) -> bytes | None:
        """Exactly ``n`` samples (``2n`` bytes), or None when the source has ended.
        A short last frame is zero-padded."""
        if self.closed:
            return None
        data = self._read(n)
        if not data:
            return None
        if len(data) < n * WIDTH:
            data = data + b"\x00" * (n * WIDTH - len(data))
        self.samples_read += n
        return data

    @property
    def time_s(self) -> float:
        """Audio time consumed so far (the source's own clock)."""
        return self.samples_read / self.rate

    def frames(self, n: int = FRAME_SAMPLES) -> Iterator[bytes]:
        while (f := self.read(n)) is not None:
            yield f

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AudioSink:
    """Base class: subclasses implement ``_write``; ``stop``/``drain`` as the device allows."""
    rate: int = RATE

    def __init__(self):
        self.closed = False
        self.samples_written = 0
        self.stops = 0

    def _write(self, pcm: bytes) -> None:
        raise NotImplementedError

    def write(self, pcm: bytes) -> None:
        if self.closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if len(pcm) % WIDTH:
            raise ValueError("PCM must be whole int16 samples")
        self._write(pcm)
        self.samples_written += len(pcm) // WIDTH

    def stop(self) -> None:
        """Drop anything queued but not yet played (barge-in)."""
        self.stops += 1

    def drain(self) -> None:
        """Block until everything written has been played."""

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- in-memory / generator / WAV ------------------------------------------------------------

class GeneratorSource(AudioSource):
    """Frames from any iterable of PCM chunks (bytes, or int16 numpy arrays) of any size.
    ``realtime=True`` paces reads to the audio clock, like a microphone."""

    def __init__(self, chunks: Iterable, rate: int = RATE, realtime: bool = False):
        super().__init__()
        self.rate, self.realtime = rate, realtime
        self._it = iter(chunks)
        self._buf = bytearray()
        self._t0: float | None = None

    def _read(self, n: int) -> bytes | None:
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic()
            ahead = self._t0 + (self.samples_read + n) / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        want = n * WIDTH
        while len(self._buf) < want:
            try:
                chunk = next(self._it)
            except StopIteration:
                break
            self._buf += chunk if isinstance(chunk, (bytes, bytearray)) else chunk.astype("<i2").tobytes()
        out = bytes(self._buf[:want])
        del self._buf[:want]
        return out or None


class BufferSink(AudioSink):
    """Keeps everything written in ``data`` (what a speaker would have played)."""

    def __init__(self, rate: int = RATE):
        super().__init__()
        self.rate = rate
        self.data = bytearray()

    def _write(self, pcm: bytes) -> None:
        self.data += pcm


def read_wav(path: str | Path, rate: int = RATE) -> bytes:
    """A WAV file as 16-bit mono PCM at ``rate`` (downmixed and resampled with soxr if needed)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            ch, width, fr, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a readable PCM WAV file ({exc})") from exc
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples; only 16-bit PCM WAV is supported")
    if ch != 1 or fr != rate:
        import numpy as np
        x = np.frombuffer(raw, dtype="<i2").reshape(-1, ch).astype(np.float32).mean(axis=1)
        if fr != rate:
            import soxr
            x = soxr.resample(x, fr, rate)
        raw = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    return raw


def write_wav(path: str | Path, pcm: bytes, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(WIDTH)
        w.setframerate(rate)
        w.writeframes(pcm)


class WavSource(GeneratorSource):
    """A WAV file as a (non-real-time) source at 16 kHz mono."""

    def __init__(self, path: str | Path, rate: int = RATE):
        self.path = Path(path)
        pcm = read_wav(self.path, rate)
        self.duration_s = len(pcm) / WIDTH / rate
        super().__init__([pcm], rate=rate)


class WavSink(AudioSink):
    """Writes everything to a mono 16-bit WAV file at ``rate``."""

    def __init__(self, path: str | Path, rate: int = RATE):
        super().__init__()
        self.rate = rate
        self.path = Path(path)
        self._w = wave.open(str(self.path), "wb")
        self._w.setnchannels(1)
        self._w.setsampwidth(WIDTH)
        self._w.setframerate(rate)

    def _write(self, pcm: bytes) -> None:
        self._w.writeframes(pcm)

    def close(self) -> None:
        if not self.closed:
            self._w.close()
        super().close()


# -- PortAudio (sounddevice) ------------------------------------------------------------------

class SoundDeviceSource(AudioSource):
    """Microphone through PortAudio. A read error (device unplugged, ALSA xrun storm) closes the
    stream and reopens it with exponential backoff (``backoff_s`` doubling up to ``max_backoff_s``);
    after ``max_reopen`` failed attempts in a row it raises RuntimeError (None = retry forever).

    >>> with SoundDeviceSource(device="default") as mic:     # doctest: +SKIP
    ...     frame = mic.read()
    """
    realtime = True

    def __init__(self, device=None, rate: int = RATE, blocksize: int = FRAME_SAMPLES,
                 backoff_s: float = 0.1, max_backoff_s: float = 5.0, max_reopen: int | None = 20):
        super().__init__()
        self.sd = _sounddevice()
        self.device, self.rate, self.blocksize = device, rate, blocksize
        self.backoff_s, self.max_backoff_s, self.max_reopen = backoff_s, max_backoff_s, max_reopen
        self.reopens = 0
        self.overflows = 0
        self._stream = None
        self._open()

    def _open(self) -> None:
        s = self.sd.RawInputStream(samplerate=self.rate, blocksize=self.blocksize, device=self.device,
                                   channels=1, dtype="int16")
        s.start()
        self._stream = s

    def _drop_stream(self) -> None:
        s, self._stream = self._stream, None
        if s is not None:
            try:
                s.abort()
                s.close()
            except Exception as exc:  # the device is already gone; nothing more to release
                log.debug("closing lost input stream: %s", exc)

    def _reopen(self, reason: Exception) -> None:
        log.warning("audio input lost (%s); reopening", reason)
        self._drop_stream()
        delay, attempt = self.backoff_s, 0
        while not self.closed:
            attempt += 1
            try:
                # re-scan devices: a re-plugged USB mic gets a new index
                self.sd._terminate()
                self.sd._initialize()
                self._open()
                self.reopens += 1
                log.info("audio input reopened after %d attempt(s)", attempt)
                return
            except Exception as exc:   # PortAudioError or ValueError (device not found)
                if self.max_reopen is not None and attempt >= self.max_reopen:
                    raise RuntimeError(f"audio input {self.device!r} did not come back after "
                                       f"{attempt} attempts: {exc}") from exc
                log.info("reopen attempt %d failed (%s); retrying in %.2f s", attempt, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

    def _read(self, n: int) -> bytes | None:
        while not self.closed:
            try:
                if self._stream is None:
                    raise self.sd.PortAudioError("stream not open")
                data, overflowed = self._stream.read(n)
                if overflowed:
                    self.overflows += 1
                return bytes(data)
            except self.sd.PortAudioError as exc:
                self._reopen(exc)
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._drop_stream()


class SoundDeviceSink(AudioSink):
    """Speaker through PortAudio; ``write`` blocks at playback pace, ``stop`` aborts the stream
    (dropping queued audio) and restarts it."""

    def __init__(self, device=None, rate: int = RATE, blocksize: int = 0):
        super().__init__()
        self.sd = _sounddevice()
        self.device, self.rate = device, rate
        self._lock = threading.Lock()
        self._stream = self.sd.RawOutputStream(samplerate=rate, blocksize=blocksize, device=device,
                                               channels=1, dtype="int16")
        self._stream.start()

    def _write(self, pcm: bytes) -> None:
        with self._lock:
            self._stream.write(pcm)

    def stop(self) -> None:
        super().stop()
        with self._lock:
            self._stream.abort()
            self._stream.start()

    def drain(self) -> None:
        with self._lock:
            self._stream.stop()    # Pa_StopStream plays out what is buffered
            self._stream.start()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._stream.stop()
            finally:
                self._stream.close()
