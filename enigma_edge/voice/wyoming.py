"""Home Assistant integration over the Wyoming protocol (the ``wyoming`` package).

Three pieces:

- :class:`ServiceHandler`: our wake word, STT and TTS as Wyoming services on one server
  (describe/info; detect + audio -> detection/not-detected; transcribe + audio -> transcript;
  synthesize -> audio-start/chunk/stop). Home Assistant (or any Wyoming client) can use them.
- :class:`SatelliteHandler`: a satellite Home Assistant adopts. HA connects to it (a satellite
  is a *server*), sends describe then run-satellite; on the local wake word the satellite sends
  detection, run-pipeline (asr -> tts) and streams microphone audio-start/chunks until HA
  answers with a transcript (or ``stream_timeout_s`` passes: never stuck streaming); then it plays
  the TTS audio HA sends and reports played. pause-satellite stops it.
- :class:`WyomingSTT` / :class:`WyomingTTS`: clients of remote Wyoming services (e.g. another
  enigma-edge, wyoming-faster-whisper, wyoming-piper) that reconnect with backoff when the server
  restarts.

``serve(...)`` runs either server on a URI (``tcp://0.0.0.0:10700``) and can advertise it with
zeroconf as ``_wyoming._tcp.local.``.

>>> import asyncio
>>> from enigma_edge.voice.wyoming import serve                       # doctest: +SKIP
>>> asyncio.run(serve("tcp://127.0.0.1:10300", services=VoiceServices(stt=..., tts=...)))
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

from . import RATE, WIDTH

log = logging.getLogger(__name__)

ATTRIBUTION = ("enigma-edge", "https://github.com/enigma-edge/enigma-edge")
CHUNK_SAMPLES = 1024    # audio-chunk size we send (64 ms at 16 kHz)


def _attr():
    from wyoming.info import Attribution
    return Attribution(name=ATTRIBUTION[0], url=ATTRIBUTION[1])


def _chunks(pcm: bytes, rate: int, samples: int = CHUNK_SAMPLES):
    from wyoming.audio import AudioChunk
    step = samples * WIDTH
    for i in range(0, len(pcm), step):
        yield AudioChunk(rate=rate, width=WIDTH, channels=1, audio=pcm[i:i + step])


def _converter(rate: int = RATE):
    from wyoming.audio import AudioChunkConverter
    return AudioChunkConverter(rate=rate, width=WIDTH, channels=1)


@dataclass
class VoiceServices:
    """Engines shared by all connections of a service server. Each may be None (not offered).
    ``wake_factory`` builds a fresh :class:`~enigma_edge.voice.wake.WakeWord` per session."""
    stt: object | None = None
    tts: object | None = None
    wake_factory: object | None = None
    wake_models: list[str] = field(default_factory=lambda: ["okay_nabu"])
    lock: threading.Lock = field(default_factory=threading.Lock)   # one STT/TTS job at a time

    def info(self):
        from wyoming.info import (AsrModel, AsrProgram, Info, TtsProgram, TtsVoice, WakeModel,
                                  WakeProgram)
        a = _attr()
        asr = [AsrProgram(name=f"enigma-edge-{self.stt.name}", attribution=a, installed=True,
                          description=f"{self.stt.name} speech-to-text", version=None,
                          models=[AsrModel(name=self.stt.name, attribution=a, installed=True,
                                           description=None, version=None, languages=["en"])])] \
            if self.stt else []
        tts = [TtsProgram(name="enigma-edge-piper", attribution=a, installed=True,
                          description="piper text-to-speech", version=None,
                          voices=[TtsVoice(name="en_US-joe-medium", attribution=a, installed=True,
                                           description=None, version=None, languages=["en_US"])])] \
            if self.tts else []
        wake = [WakeProgram(name="enigma-edge-microwakeword", attribution=a, installed=True,
                            description="microWakeWord", version=None,
                            models=[WakeModel(name=m, attribution=a, installed=True, description=None,
                                              version=None, languages=["en"], phrase=m.replace("_", " "))
                                    for m in self.wake_models])] if self.wake_factory else []
        return Info(asr=asr, tts=tts, wake=wake)


def _server_handler_base():
    from wyoming.server import AsyncEventHandler
    return AsyncEventHandler


class ServiceHandler:
    """Factory of per-connection handlers for :class:`VoiceServices` (see module doc)."""

    def __new__(cls, services: VoiceServices):
        base = _server_handler_base()

        class _Handler(base):
            def __init__(self, reader, writer):
                super().__init__(reader, writer)
                self.sv = services
                self.mode = "stt"            # what audio chunks feed: "stt" or "wake"
                self.audio = bytearray()
                self.conv = _converter()
                self.wake = None
                self.detected = False

            async def handle_event(self, event) -> bool:
                from wyoming.asr import Transcribe, Transcript
                from wyoming.audio import AudioChunk, AudioStart, AudioStop
                from wyoming.info import Describe
                from wyoming.tts import Synthesize
                from wyoming.wake import Detect, Detection, NotDetected
                loop = asyncio.get_running_loop()
                if Describe.is_type(event.type):
                    await self.write_event(self.sv.info().event())
                elif Transcribe.is_type(event.type):
                    self.mode, self.audio = "stt", bytearray()
                elif Detect.is_type(event.type):
                    if not self.sv.wake_factory:
                        log.warning("detect requested but no wake word service is configured")
                        return True
                    self.mode, self.detected = "wake", False
                    if self.wake is None:
                        self.wake = self.sv.wake_factory()
                elif AudioStart.is_type(event.type):
                    self.audio = bytearray()
                    self.conv = _converter()
                elif AudioChunk.is_type(event.type):
                    pcm = self.conv.convert(AudioChunk.from_event(event)).audio
                    if self.mode == "wake" and self.wake is not None:
                        det = self.wake.feed(pcm)
                        if det is not None and not self.detected:
                            self.detected = True
                            await self.write_event(Detection(name=det.model,
                                                             timestamp=int(det.time_s * 1000)).event())
                    else:
                        self.audio += pcm
                elif AudioStop.is_type(event.type):
                    if self.mode == "wake":
                        if not self.detected:
                            await self.write_event(NotDetected().event())
                    elif self.sv.stt is not None:
                        pcm, self.audio = bytes(self.audio), bytearray()
                        tr = await loop.run_in_executor(None, self._transcribe, pcm)
                        await self.write_event(Transcript(text=tr.text).event())
                elif Synthesize.is_type(event.type):
                    if self.sv.tts is None:
                        return True
                    text = Synthesize.from_event(event).text
                    rate = self.sv.tts.rate
                    await self.write_event(AudioStart(rate=rate, width=WIDTH, channels=1).event())
                    it = self.sv.tts.stream(text)
                    while True:   # one sentence at a time: the first audio leaves early
                        sc = await loop.run_in_executor(None, self._next_sentence, it)
                        if sc is None:
                            break
                        for ch in _chunks(sc.pcm, rate):
                            await self.write_event(ch.event())
                    await self.write_event(AudioStop().event())
                return True

            def _transcribe(self, pcm):
                with self.sv.lock:
                    return self.sv.stt.transcribe(pcm)

            def _next_sentence(self, it):
                with self.sv.lock:
                    return next(it, None)

            async def disconnect(self) -> None:
                if self.wake is not None:
                    self.wake.close()
                    self.wake = None

        return _Handler


class SatelliteHandler:
    """Factory of the satellite's per-connection handler (one HA connection at a time)."""

    def __new__(cls, source, sink, wake, *, name: str = "enigma-edge", area: str | None = None,
                stream_timeout_s: float = 15.0, on_event=None):
        base = _server_handler_base()

        class _Handler(base):
            def __init__(self, reader, writer):
                super().__init__(reader, writer)
                self.state = "paused"     # paused, wake, streaming, playing
                self.task: asyncio.Task | None = None
                self.stream_started = 0.0
                self.conv = _converter(sink.rate)
                self.got_transcript = asyncio.Event()

            def _log(self, kind, **data):
                log.info("satellite %s %s", kind, data)
                if on_event:
                    on_event(kind, data)

            async def handle_event(self, event) -> bool:
                from wyoming.asr import Transcript
                from wyoming.audio import AudioChunk, AudioStart, AudioStop
                from wyoming.error import Error
                from wyoming.info import Describe, Info, Satellite, WakeModel, WakeProgram
                from wyoming.satellite import PauseSatellite, RunSatellite
                from wyoming.snd import Played
                loop = asyncio.get_running_loop()
                if Describe.is_type(event.type):
                    a = _attr()
                    models = [WakeModel(name=m, attribution=a, installed=True, description=None,
                                        version=None, languages=["en"], phrase=m.replace("_", " "))
                              for m in wake.models]
                    info = Info(
                        wake=[WakeProgram(name="enigma-edge-microwakeword", attribution=a, installed=True,
                                          description="microWakeWord", version=None, models=models)],
                        satellite=Satellite(name=name, attribution=a, installed=True,
                                            description="enigma-edge voice satellite", version=None,
                                            area=area, has_vad=False, active_wake_words=list(wake.models),
                                            max_active_wake_words=len(wake.models), supports_trigger=False))
                    await self.write_event(info.event())
                elif RunSatellite.is_type(event.type):
                    if self.task is None or self.task.done():
                        self.state = "wake"
                        self.task = asyncio.create_task(self._mic_loop())
                    self._log("run-satellite")
                elif PauseSatellite.is_type(event.type):
                    await self._stop_mic()
                    self.state = "paused"
                    self._log("pause-satellite")
                elif Transcript.is_type(event.type) or Error.is_type(event.type):
                    # the server finished listening: stop streaming the microphone
                    self.got_transcript.set()
                    self._log(event.type, **(event.data or {}))
                elif AudioStart.is_type(event.type):
                    self.state = "playing"
                    wake.muted = True          # never wake on our own voice
                    self.conv = _converter(sink.rate)
                    self._log("play-start")
                elif AudioChunk.is_type(event.type):
                    pcm = self.conv.convert(AudioChunk.from_event(event)).audio
                    await loop.run_in_executor(None, sink.write, pcm)
                elif AudioStop.is_type(event.type):
                    await loop.run_in_executor(None, sink.drain)
                    await self.write_event(Played().event())
                    wake.muted = False
                    self.state = "wake" if self.task and not self.task.done() else "paused"
                    self._log("played")
                return True

            async def _stop_mic(self):
                if self.task is not None:
                    self.task.cancel()
                    try:
                        await self.task
                    except asyncio.CancelledError:
                        pass
                    self.task = None

            async def _mic_loop(self):
                from wyoming.audio import AudioChunk, AudioStart, AudioStop
                from wyoming.pipeline import PipelineStage, RunPipeline
                from wyoming.wake import Detection
                loop = asyncio.get_running_loop()
                pending = bytearray()
                try:
                    while True:
                        frame = await loop.run_in_executor(None, source.read)
                        if frame is None:
                            if self.state == "streaming":     # never leave the server listening
                                await self.write_event(AudioStop().event())
                                self.state = "wake"
                            self._log("source-ended")
                            return
                        if self.state == "streaming":
                            pending += frame
                            if len(pending) >= CHUNK_SAMPLES * WIDTH:
                                await self.write_event(AudioChunk(rate=RATE, width=WIDTH, channels=1,
                                                                  audio=bytes(pending)).event())
                                pending.clear()
                            timed_out = time.monotonic() - self.stream_started > stream_timeout_s
                            if self.got_transcript.is_set() or timed_out:
                                await self.write_event(AudioStop().event())
                                self.state = "wake"
                                self._log("stream-stop", timeout=timed_out)
                            continue
                        det = wake.feed(frame)
                        if det is not None and self.state == "wake":
                            self._log("detection", name=det.model)
                            await self.write_event(Detection(name=det.model,
                                                             timestamp=int(det.time_s * 1000)).event())
                            await self.write_event(RunPipeline(start_stage=PipelineStage.ASR,
                                                               end_stage=PipelineStage.TTS).event())
                            await self.write_event(AudioStart(rate=RATE, width=WIDTH, channels=1).event())
                            self.got_transcript.clear()
                            self.state = "streaming"
                            self.stream_started = time.monotonic()
                            pending.clear()
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    self._log("disconnected", error=str(exc))

            async def disconnect(self) -> None:
                await self._stop_mic()
                wake.muted = False

        return _Handler


# -- clients of remote services, with reconnect ------------------------------------------------

class _ReconnectingClient:
    """Runs one request per call on a persistent connection; on a connection error it reconnects
    with exponential backoff (the server restarted) and retries the request once connected."""

    def __init__(self, uri: str, *, backoff_s: float = 0.1, max_backoff_s: float = 5.0,
                 max_attempts: int = 20, timeout_s: float = 30.0):
        self.uri = uri
        self.backoff_s, self.max_backoff_s, self.max_attempts = backoff_s, max_backoff_s, max_attempts
        self.timeout_s = timeout_s
        self.reconnects = 0
        self._client = None
        self._loop = asyncio.new_event_loop()
        self.closed = False

    async def _connect(self):
        from wyoming.client import AsyncClient
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                c = AsyncClient.from_uri(self.uri)
                await c.connect()
                return c
            except OSError as exc:
                if attempt == self.max_attempts:
                    raise ConnectionError(f"Wyoming server {self.uri} unreachable after {attempt} attempts: {exc}") from exc
                log.info("connect %s failed (%s); retry in %.2f s", self.uri, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

    async def _request(self, fn):
        for attempt in (1, 2):
            if self._client is None:
                self._client = await self._connect()
                if attempt == 2:
                    self.reconnects += 1
            try:
                return await asyncio.wait_for(fn(self._client), self.timeout_s)
            except (ConnectionError, asyncio.IncompleteReadError, EOFError) as exc:
                log.warning("Wyoming connection to %s lost (%s); reconnecting", self.uri, exc)
                try:
                    await self._client.disconnect()
                except Exception:   # already broken
                    pass
                self._client = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def call(self, fn):
        if self.closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        return self._loop.run_until_complete(self._request(fn))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._client is not None:
                self._loop.run_until_complete(self._client.disconnect())
            self._loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


async def _read_until(client, *types):
    while True:
        ev = await client.read_event()
        if ev is None:
            raise ConnectionError("server closed the connection")
        if ev.type in types:
            return ev


class WyomingSTT(_ReconnectingClient):
    """STT backend (same interface as :mod:`~enigma_edge.voice.stt`) over a Wyoming ASR server."""
    name = "wyoming"

    def transcribe(self, pcm: bytes):
        from wyoming.asr import Transcribe
        from wyoming.audio import AudioStart, AudioStop
        from .stt import Transcript

        async def run(c):
            await c.write_event(Transcribe().event())
            await c.write_event(AudioStart(rate=RATE, width=WIDTH, channels=1).event())
            for ch in _chunks(pcm, RATE):
                await c.write_event(ch.event())
            await c.write_event(AudioStop().event())
            ev = await _read_until(c, "transcript")
            return ev.data.get("text", "")

        t0 = time.perf_counter()
        text = self.call(run)
        from .commands import normalize
        return Transcript(text=normalize(text), backend="wyoming", raw=text,
                          seconds=time.perf_counter() - t0, audio_s=len(pcm) / WIDTH / RATE)

    def stream(self):
        from .stt import BufferedStream
        return BufferedStream(self)


class WyomingTTS(_ReconnectingClient):
    """TTS over a Wyoming server; ``stream`` yields audio as it arrives (first chunk early)."""

    def __init__(self, uri: str, rate: int = RATE, **kw):
        super().__init__(uri, **kw)
        self.rate = rate

    def first_audio(self, text: str) -> tuple[float, bytes]:
        """(seconds to the first audio chunk, all audio at ``self.rate``)."""
        from wyoming.tts import Synthesize
        from wyoming.audio import AudioChunk

        async def run(c):
            t0 = time.perf_counter()
            await c.write_event(Synthesize(text=text).event())
            conv, first, out = _converter(self.rate), None, bytearray()
            while True:
                ev = await _read_until(c, "audio-chunk", "audio-stop")
                if ev.type == "audio-stop":
                    return first or 0.0, bytes(out)
                if first is None:
                    first = time.perf_counter() - t0
                out += conv.convert(AudioChunk.from_event(ev)).audio

        return self.call(run)

    def synthesize(self, text: str) -> bytes:
        return self.first_audio(text)[1]


# -- running a server ----------------------------------------------------------------------------

async def advertise(port: int, name: str, host: str | None = None):
    """Advertise ``name._wyoming._tcp.local.`` on ``host:port``; returns the AsyncZeroconf (close it
    with ``await zc.async_close()``)."""
    import socket
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf
    if host is None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect(("224.0.0.251", 1))
            host = s.getsockname()[0]
        finally:
            s.close()
    zc = AsyncZeroconf(interfaces=[host])
    info = AsyncServiceInfo("_wyoming._tcp.local.", f"{name}._wyoming._tcp.local.",
                            addresses=[socket.inet_aton(host)], port=port,
                            server=f"{name}.local.")
    await zc.async_register_service(info)
    log.info("zeroconf: advertised %s on %s:%d", info.name, host, port)
    return zc


async def start_server(uri: str, handler_factory):
    """Start a Wyoming server on ``uri`` (tcp://host:port, unix://path); returns the server."""
    from wyoming.server import AsyncServer
    server = AsyncServer.from_uri(uri)
    await server.start(handler_factory)
    return server


# -- `enigma-edge wyoming ...` -----------------------------------------------------------------

def configure(parser) -> None:
    parser.add_argument("role", choices=["services", "satellite"],
                        help="services: our wake/STT/TTS as Wyoming services; satellite: a satellite HA adopts")
    parser.add_argument("--uri", default="tcp://0.0.0.0:10700", help="where to listen (tcp://host:port or unix://path)")
    parser.add_argument("--stt", default="whisper", choices=["pocketsphinx", "whisper", "vosk"])
    parser.add_argument("--vosk-model", help="vosk model directory (with --stt vosk)")
    parser.add_argument("--wake", default="okay_nabu")
    parser.add_argument("--name", default="enigma-edge", help="satellite / zeroconf name")
    parser.add_argument("--zeroconf", action="store_true", help="advertise _wyoming._tcp on the LAN")
    parser.add_argument("--mic", help="satellite input: a WAV file (default: the sound card)")
    parser.add_argument("--speaker-wav", help="satellite output: a WAV file (default: the sound card)")
    parser.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from .wake import WakeWord
    if args.role == "services":
        from .stt import make_stt
        from .tts import PiperTTS
        if args.stt == "vosk" and not args.vosk_model:
            raise ValueError("--stt vosk needs --vosk-model DIR")
        opts = {"model_dir": args.vosk_model} if args.stt == "vosk" else {}
        services = VoiceServices(stt=make_stt(args.stt, **opts), tts=PiperTTS(),
                                 wake_factory=lambda: WakeWord(args.wake), wake_models=[args.wake])
        factory = ServiceHandler(services)
    else:
        from .audio import SoundDeviceSink, SoundDeviceSource, WavSink, WavSource
        source = WavSource(args.mic) if args.mic else SoundDeviceSource()
        sink = WavSink(args.speaker_wav) if args.speaker_wav else SoundDeviceSink()
        factory = SatelliteHandler(source, sink, WakeWord(args.wake), name=args.name)
    return asyncio.run(_serve_forever(args.uri, factory, args.zeroconf, args.name))


async def _serve_forever(uri: str, factory, zeroconf: bool, name: str) -> int:
    from urllib.parse import urlparse
    server = await start_server(uri, factory)
    zc = None
    if zeroconf:
        u = urlparse(uri)
        zc = await advertise(u.port, name, None if u.hostname in ("0.0.0.0", None) else u.hostname)
    print(f"wyoming server on {uri}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        if zc is not None:
            await zc.async_close()
        await server.stop()
    return 0
