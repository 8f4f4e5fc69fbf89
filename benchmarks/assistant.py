"""Assistant latency and memory: end of speech -> action (fast path), end of speech -> first
reply audio (LLM path on the local default model), and the whole daemon's peak RSS.

Side by side in the same run: the LLM path's model step (time to first token of the very prompt
the assistant sends) for our engine and for llama-cpp-python on the same file and threads.
Pi boards are projected from this machine's numbers (see --help of the printed table).

    python benchmarks/assistant.py [--runs 5] [--threads 2] [--write]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
PINS = {"led": 17, "motor_left": [5, 6], "motor_right": [13, 19], "servo": 18, "gripper": 16}

# Published / commonly measured single-stream DRAM read bandwidth of each board (GB/s), used only
# for the projection column. Sources: Raspberry Pi product briefs (LPDDR2-900 / LPDDR4-3200 /
# LPDDR4X-4267) and public STREAM/tinymembench runs; they are approximations, not measurements here.
BOARD_BW_GBS = {"pi_zero2": 1.6, "pi_3": 2.2, "pi_4": 4.0, "pi_5": 9.0}


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def _utterances():
    from enigma_edge.voice.tts import PiperTTS
    with PiperTTS(deterministic=True) as tts:
        s = lambda sec: b"\x00\x00" * int(16000 * sec)  # noqa: E731
        wake = tts.synthesize("Okay nabu.")
        cmd = s(0.5) + wake + s(0.4) + tts.synthesize("Turn on the kitchen light.") + s(2.0)
        q = s(0.5) + wake + s(0.4) + tts.synthesize("What is the capital of France?") + s(3.0)
    return cmd, q


def run_turn(assistant, pcm, stt, wake, tts):
    from enigma_edge.voice.audio import BufferSink, GeneratorSource
    from enigma_edge.voice.pipeline import VoicePipeline
    acted = {}
    inner = assistant.robot

    def timed_robot(name, args):
        out = inner(name, args)
        acted["t"] = time.perf_counter()
        return out
    timed_robot.tools = inner.tools
    assistant.robot = timed_robot
    try:
        p = VoicePipeline(GeneratorSource([pcm]), BufferSink(), wake, stt, tts, assistant.handler)
        p.run()
    finally:
        assistant.robot = inner
    turn = p.turns[0]
    return turn, (acted["t"] - p._eos_wall) if "t" in acted else None


def ttft(create_stream, prompt, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        for _chunk in create_stream(prompt):
            break
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="replace the assistant section of BENCHMARKS.md")
    args = ap.parse_args()

    from enigma_edge.assistant import Assistant
    from enigma_edge.assistant_parts import Memory
    from enigma_edge.llm import LLM
    from enigma_edge.models import resolve_model
    from enigma_edge.robot.gpio import RobotDevices
    from enigma_edge.robot.tools import ToolRunner
    from enigma_edge.voice.stt import PocketSphinxSTT, WhisperSTT
    from enigma_edge.voice.tts import PiperTTS
    from enigma_edge.voice.wake import WakeWord

    model = resolve_model(None)
    cmd, question = _utterances()
    llm = LLM(model, n_ctx=2048, n_threads=args.threads, progress=False)
    rows = {}
    with RobotDevices(PINS) as devices, WakeWord() as wake, PocketSphinxSTT() as grammar, \
            WhisperSTT() as whisper, PiperTTS() as tts:
        runner = ToolRunner(devices)

        from enigma_edge.voice.stt import STT

        class Both(STT):
            name = "grammar+whisper"

            def _decode(self, pcm):
                tr = grammar.transcribe(pcm)
                return whisper.transcribe(pcm) if tr.rejected else tr

        stt = Both()
        fast, stt_fast, llm_first, stt_q = [], [], [], []
        for _ in range(args.runs):
            a = Assistant(llm=llm, robot=runner, memory=Memory())
            turn, act = run_turn(a, cmd, stt, wake, tts)
            assert a.last.path == "fast", a.last
            fast.append(act)
            stt_fast.append(turn.stt_s)
            a = Assistant(llm=llm, robot=runner, memory=Memory())
            turn, _ = run_turn(a, question, stt, wake, tts)
            assert a.last.path == "llm", a.last
            llm_first.append(turn.first_audio_s)
            stt_q.append(turn.stt_s)
            reply = a.last.reply
        prompt, _ = Assistant(llm=llm, robot=runner, memory=Memory())._prompt("what is the capital of france")

    # the model step alone, ours vs llama.cpp, same prompt, cold prompt cache each time
    def ours(p):
        llm.reset()
        return (c["choices"][0]["text"] for c in llm.create_completion(p, max_tokens=8, temperature=0.0, stream=True))
    ours_ttft = ttft(ours, prompt, args.runs)
    peer_ttft = []
    try:
        from llama_cpp import Llama
        peer = Llama(str(model), n_ctx=2048, n_threads=args.threads, verbose=False)

        def theirs(p):
            peer.reset()
            return peer.create_completion(p, max_tokens=8, temperature=0.0, stream=True)
        peer_ttft = ttft(theirs, prompt, args.runs)
    except ImportError:
        print("llama-cpp-python not installed: peer column empty", file=sys.stderr)
    n_prompt = len(llm.tokenize(prompt))
    llm.close()

    # whole daemon, cold process: peak RSS of `enigma-edge assistant --wav` over both turns
    with tempfile.TemporaryDirectory() as d:
        from enigma_edge.voice.audio import write_wav
        wav = Path(d) / "u.wav"
        write_wav(wav, cmd + question)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "enigma_edge.cli", "assistant", "--wav", str(wav),
                        "--reply-wav", str(Path(d) / "r.wav"), "--no-memory", "--board", "desktop"],
                       check=True, capture_output=True, cwd=d,
                       env=dict(os.environ, ENIGMA_EDGE_LLM_THREADS=str(args.threads)))
        daemon_wall = time.perf_counter() - t
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    ms = lambda x: f"{x * 1000:.0f} ms"  # noqa: E731
    lines = [
        "## Assistant",
        "",
        f"Default model (Gemma 3 270M Q4_K_M), {args.threads} threads, piper + pocketsphinx grammar + "
        f"faster-whisper tiny.en, gpiozero MockFactory; medians of {args.runs} runs. Times from the end "
        "of speech (the VAD's decision) on the audio clock of a WAV fed faster than real time.",
        "",
        "| what | median |",
        "|---|---:|",
        f"| fast path: end of speech -> action (LED on) | {ms(median(fast))} |",
        f"| &nbsp;&nbsp;of which STT (grammar) | {ms(median(stt_fast))} |",
        f"| LLM path: end of speech -> first reply audio | {ms(median(llm_first))} |",
        f"| &nbsp;&nbsp;of which STT (grammar, rejected, then whisper) | {ms(median(stt_q))} |",
        f"| model step, ours: prompt ({n_prompt} tokens, cold) -> first token | {ms(median(ours_ttft))} |",
        f"| model step, llama-cpp-python, same prompt and threads | "
        f"{ms(median(peer_ttft)) if peer_ttft else 'n/a'} |",
        f"| whole daemon (`assistant --wav`, both turns, cold process): wall | {daemon_wall:.1f} s |",
        f"| whole daemon: peak RSS | {rss_mb:.0f} MB |",
        "",
        f"Reply on the LLM path: \"{reply}\".",
    ]
    if peer_ttft:
        lines.append(f"Model step ratio llama-cpp-python / ours: **{median(peer_ttft) / median(ours_ttft):.2f}x**.")
    lines += [
        "",
        "Projected decode speed on the Pi boards (not measured here): one token reads the whole model "
        "(~250 MB incl. the tied 262144x640 Q8_0 output layer), so tokens/s ~ bandwidth x 0.8 / "
        "250 MB, assuming the kernels reach 80 % of read bandwidth there too (the kernels table has the "
        "fraction measured here) and published DRAM bandwidths: " + ", ".join(f"{b} ~{bw * 0.8e3 / 250:.0f} tok/s" for b, bw in BOARD_BW_GBS.items())
        + ". The fast path does not touch the model.",
        "",
        f"Command: `python benchmarks/assistant.py --runs {args.runs} --threads {args.threads} --write`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        bm = ROOT / "BENCHMARKS.md"
        cur = bm.read_text() if bm.exists() else "# Benchmarks\n"
        start = cur.find("## Assistant")
        if start >= 0:
            end = cur.find("\n## ", start + 1)
            cur = cur[:start] + cur[end + 1:] if end >= 0 else cur[:start]
        bm.write_text(cur.rstrip() + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
