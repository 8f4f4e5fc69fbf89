"""piper TTS (deterministic, sentence streaming, resampling) and the voice pipeline end to end:
wake -> listen -> transcribe -> handle -> speak -> idle, barge-in, timeouts, CLI."""
from __future__ import annotations

import threading
import time
import wave

import pytest

from voice_support import WAKE, frames, silence, utterances

pytest.importorskip("piper")
pytest.importorskip("pymicro_wakeword")


@pytest.fixture(scope="session")
def utts():
    return utterances()


@pytest.fixture(scope="module")
def engines():
    from enigma_edge.voice.stt import PocketSphinxSTT
    from enigma_edge.voice.tts import PiperTTS
    tts, stt = PiperTTS(deterministic=True), PocketSphinxSTT()
    yield tts, stt
    tts.close(); stt.close()


# -- TTS ---------------------------------------------------------------------------------------

def test_split_sentences_streams():
    from enigma_edge.voice.tts import split_sentences
    assert list(split_sentences(["It is", " 3.5 degrees. Take a", " coat!", " Bye"])) == \
        ["It is 3.5 degrees.", "Take a coat!", "Bye"]
    with pytest.raises(TypeError):
        list(split_sentences([b"bytes"]))


def test_tts_deterministic_resampled_and_sentence_by_sentence(engines):
    from enigma_edge.voice.tts import PiperTTS
    tts, _ = engines
    a, b = tts.synthesize("Turn on the kitchen light."), tts.synthesize("Turn on the kitchen light.")
    assert a == b and len(a) > 16000                  # noise 0: bit-identical, > 0.5 s of audio
    with PiperTTS(rate=22050, deterministic=True) as native:
        c = native.synthesize("Turn on the kitchen light.")
    assert abs(len(c) / 22050 - len(a) / 16000) < 0.01   # same duration, resampled by soxr

    produced = []

    def slow_llm():                                   # a reply that streams in slowly
        for part in ["The light is on. ", "It is ", "a warm light. ", "Goodbye."]:
            produced.append(part)
            yield part
    got = []
    for chunk in tts.stream(slow_llm()):
        got.append((chunk.text, len(produced)))
    # the first sentence was spoken when only the first text chunk existed
    assert got[0] == ("The light is on.", 1)
    assert [t for t, _ in got] == ["The light is on.", "It is a warm light.", "Goodbye."]


def test_say_cli(cli, tmp_path):
    out = tmp_path / "say.wav"
    r = cli("say", "Hello there. How are you?", "-o", str(out), "--deterministic")
    assert r.returncode == 0, r.stderr
    assert "first audio after" in r.stdout
    with wave.open(str(out)) as w:
        assert w.getframerate() == 22050 and w.getnchannels() == 1 and w.getnframes() > 22050


# -- pipeline ----------------------------------------------------------------------------------

def make_pipeline(pcm, engines, handler, **kw):
    from enigma_edge.voice.audio import BufferSink, GeneratorSource
    from enigma_edge.voice.pipeline import VoicePipeline
    from enigma_edge.voice.wake import WakeWord
    tts, stt = engines
    return VoicePipeline(GeneratorSource([pcm]), BufferSink(), WakeWord("okay_nabu"), stt, tts,
                         handler, **kw)


def kinds(p):
    return [e.kind for e in p.events if e.kind != "partial"]


def test_full_turn_with_timings(utts, engines):
    heard = []

    def handler(tr):
        heard.append(tr.text)
        yield "Okay. "
        yield "The kitchen light is on."
    pcm = silence(0.5) + utts[WAKE] + silence(0.3) + utts["turn on the kitchen light"] + silence(1.5)
    p = make_pipeline(pcm, engines, handler)
    p.run()
    assert kinds(p) == ["wake", "speech", "end_of_speech", "transcript", "audio_start", "done"]
    assert heard == ["turn on the kitchen light"]
    (t,) = p.turns
    assert t.outcome == "done" and t.transcript == "turn on the kitchen light"
    for k in ("wake_to_eos_s", "stt_s", "handler_first_s", "handler_s", "first_audio_s"):
        assert getattr(t, k) is not None and getattr(t, k) >= 0, k
    tts, _ = engines
    expected = len(tts.synthesize("Okay.")) + len(tts.synthesize("The kitchen light is on."))
    assert len(p.sink.data) == expected                 # the whole reply was played
    assert t.reply_audio_s == pytest.approx(expected / 2 / 16000)
    assert p.state == "idle"


def test_no_wake_on_commands_or_noise(utts, engines):
    pcm = b"".join(utts[t] + silence(0.5) for t in ["turn on the kitchen light", "stop", "noise"])
    p = make_pipeline(pcm, engines, lambda tr: ["unexpected"])
    p.run()
    assert p.events == [] and p.turns == []


def test_out_of_grammar_rejected_and_back_to_idle(utts, engines):
    calls = []
    pcm = (silence(0.5) + utts[WAKE] + silence(0.3) + utts["play some jazz music"] + silence(1.5)
           + utts[WAKE] + silence(0.3) + utts["stop"] + silence(1.5))
    p = make_pipeline(pcm, engines, lambda tr: calls.append(tr.text) or ["Stopping."])
    p.run()
    assert [t.outcome for t in p.turns] == ["rejected", "done"]
    assert calls == ["stop"]                            # the handler never saw the rejected one
    assert "rejected" in kinds(p)


def test_no_speech_timeout_returns_to_idle(utts, engines):
    pcm = silence(0.5) + utts[WAKE] + silence(3.0) + utts[WAKE] + silence(0.3) + utts["stop"] + silence(1.5)
    p = make_pipeline(pcm, engines, lambda tr: ["Stopping."], no_speech_s=1.5)
    p.run()
    assert [t.outcome for t in p.turns] == ["timeout:listen", "done"]
    timeout = next(e for e in p.events if e.kind == "timeout")
    assert timeout.data["stage"] == "listen"
    assert p.turns[1].transcript == "stop"


def test_max_utterance_timeout(utts, engines):
    talk = b"".join(utts[t] for t in ["the weather is nice today", "please call my mother",
                                        "how far away is the moon"])
    pcm = silence(0.5) + utts[WAKE] + silence(0.2) + talk + silence(1.0)
    p = make_pipeline(pcm, engines, lambda tr: ["?"], max_utterance_s=1.5)
    p.run()
    eos = next(e for e in p.events if e.kind == "end_of_speech")
    assert eos.data["reason"] == "max_length"
    assert p.turns[0].wake_to_eos_s == pytest.approx(1.5, abs=0.05)
    assert p.state == "idle"


def test_handler_timeout_and_error_return_to_idle(utts, engines):
    release = threading.Event()

    def stuck(tr):
        release.wait(10)        # a hung LLM
        yield "too late"
    pcm = silence(0.5) + utts[WAKE] + silence(0.3) + utts["stop"] + silence(1.2)
    p = make_pipeline(pcm + utts[WAKE] + silence(0.3) + utts["move forward"] + silence(1.2),
                      engines, stuck, handler_timeout_s=0.5)
    p.run()
    release.set()
    assert [t.outcome for t in p.turns] == ["timeout:thinking", "timeout:thinking"]
    assert p.sink.data == bytearray() and p.state == "idle"

    def broken(tr):
        raise RuntimeError("model file missing")
        yield
    p = make_pipeline(pcm, engines, broken)
    p.run()
    err = next(e for e in p.events if e.kind == "error")
    assert "model file missing" in err.data["error"]
    assert p.turns[-1].outcome == "error" and p.state == "idle"


def test_barge_in_stops_playback(utts, engines):
    long_reply = ["The kitchen light is on. ", "It has been a long day and the robot is tired. ",
                  "Let me tell you a very long story about the light and the gripper. ",
                  "It goes on and on for a while so that you can interrupt it."]
    replies = {"turn on the kitchen light": long_reply, "stop": ["Stopping."]}
    # the user says the wake word again 1.5 s into the reply, then "stop"
    pcm = (silence(0.5) + utts[WAKE] + silence(0.3) + utts["turn on the kitchen light"] + silence(1.0)
           + silence(1.5) + utts[WAKE] + silence(0.3) + utts["stop"] + silence(1.5))
    p = make_pipeline(pcm, engines, lambda tr: iter(replies[tr.text]))
    p.run()
    k = kinds(p)
    assert "barge_in" in k and k.index("barge_in") < k.index("done")
    assert [t.outcome for t in p.turns] == ["barge_in", "done"]
    assert [t.transcript for t in p.turns] == ["turn on the kitchen light", "stop"]
    tts, _ = engines
    full = sum(len(tts.synthesize(s)) for s in long_reply) / 32000
    assert p.turns[0].reply_audio_s < full - 1.0         # playback was cut short
    assert p.sink.stops >= 1


def test_no_self_wake_when_the_reply_says_the_wake_word(utts, engines):
    """The reply contains "okay nabu" and the microphone hears the speaker (echo): no wake."""
    from enigma_edge.voice.audio import AudioSource, BufferSink
    from enigma_edge.voice.pipeline import VoicePipeline
    from enigma_edge.voice.wake import WakeWord

    class EchoMic(AudioSource):
        """Microphone hearing the user's audio plus what the sink plays (full echo)."""
        def __init__(self, pcm, sink):
            super().__init__()
            self.pcm, self.sink, self.pos = pcm, sink, 0

        def _read(self, n):
            if self.pos >= len(self.pcm):
                return None
            import numpy as np
            user = np.frombuffer(self.pcm[self.pos:self.pos + 2 * n].ljust(2 * n, b"\0"), "<i2").astype(np.int32)
            played = self.sink.data[self.pos:self.pos + 2 * n]
            echo = np.frombuffer(bytes(played).ljust(2 * n, b"\0"), "<i2").astype(np.int32)
            self.pos += 2 * n
            return np.clip(user + echo, -32768, 32767).astype("<i2").tobytes()

    pcm = silence(0.5) + utts[WAKE] + silence(0.3) + utts["what time is it"] + silence(6.0)
    sink = BufferSink()
    # the sink is written one frame per frame read; pad it so echo lines up with the mic clock
    tts, stt = engines
    p = VoicePipeline(EchoMic(pcm, sink), sink, WakeWord("okay_nabu"), stt, tts,
                      lambda tr: ["My name is okay nabu. Okay nabu is here."])
    sink.write(b"\0" * 0)
    # align: everything the pipeline plays at mic time t is heard at mic time t
    orig_write = sink._write
    def aligned_write(pcm_out):
        gap = p.source.pos - len(sink.data)
        if gap > 0:
            orig_write(b"\0" * gap)
        orig_write(pcm_out)
    sink._write = aligned_write
    p.run()
    assert [t.outcome for t in p.turns] == ["done"], [str(e) for e in p.events]
    assert "barge_in" not in kinds(p)


def test_listen_cli_on_a_wav(cli, tmp_path, utts):
    from enigma_edge.voice.audio import write_wav
    wav = tmp_path / "in.wav"
    write_wav(wav, silence(0.5) + utts[WAKE] + silence(0.3) + utts["turn on the kitchen light"] + silence(1.5))
    r = cli("listen", "--wav", str(wav), "--reply-wav", str(tmp_path / "reply.wav"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "wake" in out and "okay_nabu" in out
    assert "transcript    text='turn on the kitchen light'" in out
    assert "turn 1 timings:" in out and "first_audio_s" in out and "stt_s" in out
    with wave.open(str(tmp_path / "reply.wav")) as w:
        assert w.getnframes() > 8000
    r = cli("listen", "--wav", str(tmp_path / "missing.wav"))
    assert r.returncode == 1 and "missing.wav" in r.stderr
