"""Wyoming protocol: our wake/STT/TTS as services, the satellite Home Assistant adopts, a client
that reconnects after the server restarts, and zeroconf advertisement; all with the real
`wyoming` client (AsyncTcpClient) over loopback TCP."""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest

from voice_support import WAKE, silence, utterances

pytest.importorskip("wyoming")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chunks(pcm, n=1024):
    from wyoming.audio import AudioChunk
    for i in range(0, len(pcm), 2 * n):
        yield AudioChunk(rate=16000, width=2, channels=1, audio=pcm[i:i + 2 * n]).event()


async def read_until(client, *types, timeout=60):
    async def go():
        while True:
            ev = await client.read_event()
            assert ev is not None, "server closed the connection"
            if ev.type in types:
                return ev
    return await asyncio.wait_for(go(), timeout)


@pytest.fixture(scope="module")
def services():
    from enigma_edge.voice.stt import PocketSphinxSTT
    from enigma_edge.voice.tts import PiperTTS
    from enigma_edge.voice.wake import WakeWord
    from enigma_edge.voice.wyoming import VoiceServices
    sv = VoiceServices(stt=PocketSphinxSTT(), tts=PiperTTS(deterministic=True),
                       wake_factory=lambda: WakeWord("okay_nabu"))
    yield sv
    sv.stt.close(); sv.tts.close()


def test_services_round_trip(services):
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info
    from wyoming.tts import Synthesize
    from wyoming.wake import Detect
    from enigma_edge.voice.wyoming import ServiceHandler, start_server
    u = utterances()
    port = free_port()

    async def main():
        server = await start_server(f"tcp://127.0.0.1:{port}", ServiceHandler(services))
        try:
            async with AsyncTcpClient("127.0.0.1", port) as c:
                await c.write_event(Describe().event())
                info = Info.from_event(await read_until(c, "info"))
                assert info.asr[0].models[0].name == "pocketsphinx"
                assert info.tts[0].voices[0].name == "en_US-joe-medium"
                assert [m.name for m in info.wake[0].models] == ["okay_nabu"]

                # TTS -> audio, then that audio back through STT
                await c.write_event(Synthesize(text="Turn on the kitchen light.").event())
                start = await read_until(c, "audio-start")
                assert start.data["rate"] == 16000
                audio = bytearray()
                while (ev := await read_until(c, "audio-chunk", "audio-stop")).type == "audio-chunk":
                    audio += ev.payload
                assert bytes(audio) == services.tts.synthesize("Turn on the kitchen light.")

                await c.write_event(Transcribe(language="en").event())
                await c.write_event(AudioStart(rate=16000, width=2, channels=1).event())
                for e in chunks(bytes(audio)):
                    await c.write_event(e)
                await c.write_event(AudioStop().event())
                tr = await read_until(c, "transcript")
                assert tr.data["text"] == "turn on the kitchen light"

                # 22.05 kHz input is converted by the server
                from enigma_edge.voice.tts import resample
                await c.write_event(Transcribe().event())
                await c.write_event(AudioStart(rate=22050, width=2, channels=1).event())
                hi = resample(u["stop"], 16000, 22050)
                from wyoming.audio import AudioChunk
                await c.write_event(AudioChunk(rate=22050, width=2, channels=1, audio=hi).event())
                await c.write_event(AudioStop().event())
                assert (await read_until(c, "transcript")).data["text"] == "stop"

                # wake word service: detection on the wake phrase, not-detected on a command
                for pcm, expect in [(silence(0.5) + u[WAKE] + silence(0.5), "detection"),
                                    (u["move forward"], "not-detected")]:
                    await c.write_event(Detect(names=["okay_nabu"]).event())
                    await c.write_event(AudioStart(rate=16000, width=2, channels=1).event())
                    for e in chunks(pcm):
                        await c.write_event(e)
                    await c.write_event(AudioStop().event())
                    ev = await read_until(c, "detection", "not-detected")
                    assert ev.type == expect
                    if expect == "detection":
                        assert ev.data["name"] == "okay_nabu"
        finally:
            await server.stop()

    asyncio.run(main())


def test_satellite_adopted_like_home_assistant(services):
    """Play Home Assistant: describe, run-satellite, receive detection + run-pipeline + mic audio,
    transcribe it, answer with a transcript and TTS audio, get played."""
    from wyoming.asr import Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info
    from wyoming.pipeline import RunPipeline
    from wyoming.satellite import RunSatellite
    from enigma_edge.voice.audio import BufferSink, GeneratorSource
    from enigma_edge.voice.wake import WakeWord
    from enigma_edge.voice.wyoming import SatelliteHandler, start_server
    u = utterances()
    mic = GeneratorSource([silence(0.3), u[WAKE], silence(0.2), u["turn left"], silence(6.0)], realtime=True)
    speaker = BufferSink()
    wake = WakeWord("okay_nabu")
    log = []
    port = free_port()

    async def main():
        server = await start_server(f"tcp://127.0.0.1:{port}",
                                    SatelliteHandler(mic, speaker, wake, name="kitchen",
                                                     on_event=lambda k, d: log.append(k)))
        try:
            async with AsyncTcpClient("127.0.0.1", port) as ha:
                await ha.write_event(Describe().event())
                info = Info.from_event(await read_until(ha, "info"))
                assert info.satellite is not None and info.satellite.name == "kitchen"
                assert info.satellite.active_wake_words == ["okay_nabu"]
                await ha.write_event(RunSatellite().event())
                det = await read_until(ha, "detection", timeout=20)
                assert det.data["name"] == "okay_nabu"
                run = RunPipeline.from_event(await read_until(ha, "run-pipeline"))
                assert (run.start_stage.value, run.end_stage.value) == ("asr", "tts")
                await read_until(ha, "audio-start")
                heard = bytearray()
                while len(heard) < 2 * 16000 * 1.6:     # HA's own VAD would stop about here
                    heard += (await read_until(ha, "audio-chunk")).payload
                text = services.stt.transcribe(bytes(heard)).text
                assert text == "turn left"
                await ha.write_event(Transcript(text=text).event())
                await read_until(ha, "audio-stop")        # the satellite stops streaming
                reply = services.tts.synthesize("Turning left.")
                await ha.write_event(AudioStart(rate=16000, width=2, channels=1).event())
                for e in chunks(reply):
                    await ha.write_event(e)
                await ha.write_event(AudioStop().event())
                await read_until(ha, "played")
                assert bytes(speaker.data) == reply
        finally:
            await server.stop()

    asyncio.run(main())
    assert log[:3] == ["run-satellite", "detection", "transcript"] and "played" in log


def test_satellite_stream_timeout_returns_to_wake(services):
    """The server never answers: the satellite stops streaming after stream_timeout_s."""
    from wyoming.client import AsyncTcpClient
    from wyoming.satellite import RunSatellite
    from enigma_edge.voice.audio import BufferSink, GeneratorSource
    from enigma_edge.voice.wake import WakeWord
    from enigma_edge.voice.wyoming import SatelliteHandler, start_server
    u = utterances()
    mic = GeneratorSource([silence(0.3), u[WAKE], silence(3.0)], realtime=True)
    log = []
    port = free_port()

    async def main():
        server = await start_server(f"tcp://127.0.0.1:{port}",
                                    SatelliteHandler(mic, BufferSink(), WakeWord("okay_nabu"),
                                                     stream_timeout_s=1.0,
                                                     on_event=lambda k, d: log.append((k, d))))
        try:
            async with AsyncTcpClient("127.0.0.1", port) as ha:
                await ha.write_event(RunSatellite().event())
                await read_until(ha, "detection", timeout=20)
                await read_until(ha, "audio-start", timeout=20)
                n = 0
                while (await read_until(ha, "audio-chunk", "audio-stop", timeout=20)).type == "audio-chunk":
                    n += 1
                assert n * 1024 >= 16000 * 0.5      # it streamed for a while, then gave up (the mic
                                                    # still had 2+ s of audio: the timeout ended it)
        finally:
            await server.stop()

    asyncio.run(main())
    assert ("stream-stop", {"timeout": True}) in log


def _start_services_process(port: int, cwd):
    code = "import sys; from enigma_edge.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "wyoming", "services", "--stt", "pocketsphinx",
                             "--uri", f"tcp://127.0.0.1:{port}"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_client_reconnects_after_server_restart(tmp_path):
    from enigma_edge.voice.wyoming import WyomingSTT, WyomingTTS
    u = utterances()
    port = free_port()
    proc = _start_services_process(port, tmp_path)
    try:
        with WyomingSTT(f"tcp://127.0.0.1:{port}", backoff_s=0.2, max_backoff_s=1.0, max_attempts=60) as stt, \
                WyomingTTS(f"tcp://127.0.0.1:{port}", backoff_s=0.2, max_backoff_s=1.0, max_attempts=60) as tts:
            assert stt.transcribe(u["stop"]).text == "stop"          # waits for the server to come up
            first_s, audio = tts.first_audio("Hello. This is a second sentence.")
            assert 0 < first_s and len(audio) > 16000
            proc.terminate(); proc.wait(30)                          # the server restarts
            proc = _start_services_process(port, tmp_path)
            assert stt.transcribe(u["move forward"]).text == "move forward"
            assert stt.reconnects == 1
    finally:
        proc.terminate(); proc.wait(30)


def test_zeroconf_advertisement():
    pytest.importorskip("zeroconf")
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf
    from enigma_edge.voice.wyoming import advertise

    async def main():
        zc = await advertise(10700, "enigma-test-sat", host="127.0.0.1")
        other = AsyncZeroconf(interfaces=["127.0.0.1"])
        try:
            info = AsyncServiceInfo("_wyoming._tcp.local.", "enigma-test-sat._wyoming._tcp.local.")
            assert await info.async_request(other.zeroconf, 3000)
            assert info.port == 10700 and info.parsed_addresses() == ["127.0.0.1"]
        finally:
            await other.async_close()
            await zc.async_close()

    asyncio.run(main())
