"""Shared test audio for the voice tests: utterances synthesized by piper (deterministic mode),
once per test process, plus seeded noise. Imported by tests/test_voice_*.py."""
from __future__ import annotations

import functools

RATE = 16000
WAKE = "okay nabu"
COMMAND_SENTENCES = ["turn on the kitchen light", "turn off the kitchen light", "move forward",
                     "move backward", "turn left", "turn right", "stop", "open the gripper",
                     "close the gripper", "what time is it"]
OUT_OF_GRAMMAR = ["the weather is nice today", "please call my mother", "how far away is the moon",
                  "play some jazz music", "read me the news", "i would like a cup of coffee"]


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(RATE * seconds)


@functools.lru_cache(maxsize=1)
def utterances() -> dict[str, bytes]:
    """text -> 16 kHz int16 PCM, synthesized once per process (piper, noise 0)."""
    from enigma_edge.voice.tts import PiperTTS
    with PiperTTS(deterministic=True) as tts:
        out = {t: tts.synthesize(t) for t in [WAKE, *COMMAND_SENTENCES, *OUT_OF_GRAMMAR]}
    out["noise"] = noise(3.0)
    return out


def noise(seconds: float, level: float = 3000.0, seed: int = 7) -> bytes:
    """Seeded white noise plus a 220 Hz hum (a fan and mains buzz)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    n = int(RATE * seconds)
    x = rng.normal(0, level, n) + 0.5 * level * np.sin(2 * np.pi * 220 * np.arange(n) / RATE)
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def frames(pcm: bytes, n: int = 320):
    for i in range(0, len(pcm) - n + 1, n):
        yield pcm[i:i + n]
