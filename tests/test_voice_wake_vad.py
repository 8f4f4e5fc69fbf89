"""Wake word (microWakeWord and openWakeWord, bundled models) and webrtcvad end of speech,
on piper-synthesized speech."""
from __future__ import annotations

import pytest

from voice_support import COMMAND_SENTENCES, OUT_OF_GRAMMAR, WAKE, frames, silence, utterances

pytest.importorskip("pymicro_wakeword")


@pytest.fixture(scope="session")
def utts():
    return utterances()


def detections(ww, pcm):
    return [d for f in frames(silence(0.5) + pcm + silence(0.5)) if (d := ww.feed(f))]


@pytest.mark.parametrize("engine", ["micro", "open"])
def test_wake_only_on_the_wake_phrase(utts, engine):
    from enigma_edge.voice.wake import WakeWord
    with WakeWord("okay_nabu", engine=engine) as ww:
        hits = detections(ww, utts[WAKE])
        assert len(hits) == 1 and hits[0].model == "okay_nabu"
        assert hits[0].probability > ww.cutoffs[0]
    with WakeWord("okay_nabu", engine=engine) as ww:     # one long stream, like a microphone
        for text in [*COMMAND_SENTENCES, *OUT_OF_GRAMMAR, "noise"]:
            assert detections(ww, utts[text]) == [], f"false wake on {text!r}"
        assert len(detections(ww, utts[WAKE])) == 1       # and it still wakes afterwards


def test_published_cutoffs_are_used():
    from enigma_edge.voice.wake import WakeWord
    with WakeWord(["okay_nabu", "hey_jarvis", "hey_mycroft", "alexa"]) as ww:
        assert ww.cutoffs == [0.85, 0.97, 0.95, 0.9]


def test_refractory_and_mute(utts):
    from enigma_edge.voice.wake import WakeWord
    twice = utts[WAKE] + silence(0.3) + utts[WAKE]
    with WakeWord("okay_nabu", refractory_s=10.0) as ww:
        assert len(detections(ww, twice)) == 1          # one utterance window fires once
    with WakeWord("okay_nabu", refractory_s=1.0) as ww:
        assert len(detections(ww, twice)) == 2          # after the refractory period it fires again
    with WakeWord("okay_nabu") as ww:
        ww.muted = True
        assert detections(ww, utts[WAKE]) == []         # muted while we speak
        ww.muted = False
        assert len(detections(ww, silence(2.0) + utts[WAKE])) == 1


def test_unknown_model_is_a_clear_error():
    from enigma_edge.voice.wake import WakeWord
    with pytest.raises(ValueError, match="bundled"):
        WakeWord("hey_computer")
    with pytest.raises(ValueError, match="engine"):
        WakeWord("okay_nabu", engine="snowboy")


def test_vad_end_of_speech_and_timeouts(utts):
    from enigma_edge.voice.vad import EndOfSpeech
    pcm = silence(0.5) + utts["turn on the kitchen light"] + silence(1.5)
    eos = EndOfSpeech(silence_ms=500)
    events = [(i, e) for i, f in enumerate(frames(pcm)) if (e := eos.feed(f))]
    assert [e for _, e in events] == ["speech", "end"]
    speech_len = len(utts["turn on the kitchen light"]) / 2 / 16000
    # speech starts near 0.5 s and ends after the utterance + 0.5 s of silence
    assert abs(events[0][0] / 100 - 0.5) < 0.15
    assert abs(events[1][0] / 100 - (0.5 + speech_len + 0.5)) < 0.3

    eos = EndOfSpeech(no_speech_s=1.0)
    assert [e for f in frames(silence(3)) if (e := eos.feed(f))] == ["no_speech"]

    eos = EndOfSpeech(max_utterance_s=1.0)   # speech that never stops
    long = b"".join(utts[t] for t in COMMAND_SENTENCES[:4])
    assert [e for f in frames(long) if (e := eos.feed(f))] == ["speech", "max_length"]
    with pytest.raises(ValueError, match="10 ms"):
        eos.is_speech(b"\x00" * 100)
