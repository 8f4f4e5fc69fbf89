"""Audio I/O: WAV and generator sources, sinks, and the real PortAudio/ALSA data path through
ALSA `file` devices defined in a test asoundrc (no sound card needed), including device loss."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import wave

import pytest

from voice_support import WAKE, silence, utterances


def test_generator_source_frames_and_padding():
    from enigma_edge.voice.audio import GeneratorSource
    src = GeneratorSource([b"\x01\x00" * 100, b"\x02\x00" * 250])
    f = list(src.frames())
    assert [len(x) for x in f] == [320, 320, 320]
    assert f[0][:2] == b"\x01\x00" and f[0][200:202] == b"\x02\x00"
    assert f[-1][-2:] == b"\x00\x00"              # short last frame zero-padded
    assert src.time_s == pytest.approx(0.03)
    src.close(); src.close()
    assert src.read() is None


def test_wav_roundtrip_and_resampling(tmp_path):
    import numpy as np
    from enigma_edge.voice.audio import WavSink, WavSource, read_wav
    t = np.arange(44100) / 44100
    stereo = (np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], 1) * 8000).astype("<i2")
    p = tmp_path / "st.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(2); w.setsampwidth(2); w.setframerate(44100); w.writeframes(stereo.tobytes())
    pcm = read_wav(p)
    assert len(pcm) == pytest.approx(32000, abs=4)  # 1 s at 16 kHz mono
    x = np.frombuffer(pcm, "<i2")
    assert 7000 < np.abs(x[1000:-1000]).max() < 8200
    with WavSink(tmp_path / "o.wav") as sink:
        sink.write(pcm)
    sink.close()
    with pytest.raises(RuntimeError, match="closed"):
        sink.write(b"\0\0")
    assert WavSource(tmp_path / "o.wav").read(16000) == pcm[:32000]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    with pytest.raises(ValueError, match="bad.wav"):
        read_wav(bad)


ASOUNDRC = """
pcm.wavin {{ type file; slave.pcm null; file "/dev/null"; infile "{infile}"; format "raw" }}
pcm.wavout {{ type file; slave.pcm null; file "{outfile}"; format "raw" }}
"""


def alsa_home(tmp_path, pcm):
    infile, outfile = tmp_path / "mic.raw", tmp_path / "speaker.raw"
    infile.write_bytes(pcm)
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(infile=infile, outfile=outfile))
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("ALSA_CONFIG_PATH", None)
    return env, outfile


def run_py(code, env, cwd):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_pipeline_through_portaudio_and_alsa_file_devices(tmp_path):
    pytest.importorskip("sounddevice")
    u = utterances()
    pcm = silence(0.5) + u[WAKE] + silence(0.3) + u["turn on the kitchen light"] + silence(2.0)
    env, outfile = alsa_home(tmp_path, pcm)
    r = run_py(f"""
        from enigma_edge.voice.audio import SoundDeviceSink, SoundDeviceSource
        from enigma_edge.voice.pipeline import VoicePipeline
        from enigma_edge.voice.stt import PocketSphinxSTT
        from enigma_edge.voice.tts import PiperTTS
        from enigma_edge.voice.wake import WakeWord
        with SoundDeviceSource(device="wavin") as mic, SoundDeviceSink(device="wavout") as spk, \\
                WakeWord() as ww, PocketSphinxSTT() as stt, PiperTTS(deterministic=True) as tts:
            p = VoicePipeline(mic, spk, ww, stt, tts, lambda tr: ["Done: " + tr.text + "."])
            p.run(max_s={len(pcm) / 32000 + 3.0})
            for e in p.events:
                print(e)
            print("OUTCOMES", [t.outcome for t in p.turns])
        """, env, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "OUTCOMES ['done']" in r.stdout, r.stdout
    assert "text='turn on the kitchen light'" in r.stdout
    import numpy as np
    played = np.frombuffer(outfile.read_bytes(), "<i2")
    assert np.count_nonzero(played) > 8000          # the reply went out through ALSA


def test_portaudio_source_survives_device_loss(tmp_path):
    pytest.importorskip("sounddevice")
    env, _ = alsa_home(tmp_path, b"\x10\x00" * 16000 * 5)
    r = run_py("""
        import os, threading, time
        from enigma_edge.voice.audio import SoundDeviceSource
        rc, gone = ".asoundrc", ".asoundrc.unplugged"
        src = SoundDeviceSource(device="wavin", backoff_s=0.05, max_reopen=50)
        assert len(src.read()) == 320
        # unplug: the device disappears from the ALSA config and the open stream dies
        os.rename(rc, gone)
        src._stream.abort(); src._stream.close()
        threading.Timer(0.4, os.rename, (gone, rc)).start()     # plugged back in later
        t0 = time.monotonic()
        frame = src.read()
        print("BACK", len(frame), src.reopens, round(time.monotonic() - t0, 2))
        src.close(); src.close()
        # a device that never comes back ends in a clear error, not a hang
        src = SoundDeviceSource(device="wavin", backoff_s=0.01, max_backoff_s=0.02, max_reopen=3)
        os.rename(rc, gone)
        src._stream.abort(); src._stream.close()
        try:
            src.read()
        except RuntimeError as e:
            print("GAVEUP", e)
        """, env, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    back = next(l for l in r.stdout.splitlines() if l.startswith("BACK")).split()
    assert back[1] == "320" and back[2] == "1" and float(back[3]) >= 0.3   # waited for the device
    assert "GAVEUP" in r.stdout and "3 attempts" in r.stdout


def test_missing_portaudio_names_the_package(tmp_path):
    """With libportaudio unloadable, the error says which system package to install."""
    pytest.importorskip("sounddevice")
    r = run_py("""
        import ctypes.util
        ctypes.util.find_library = lambda name: None      # as on a system without libportaudio2
        import sys, sounddevice
        """, dict(os.environ), tmp_path)
    if r.returncode == 0:
        pytest.skip("sounddevice found PortAudio without ctypes.util (bundled library)")
    r = run_py("""
        import ctypes.util
        ctypes.util.find_library = lambda name: None
        from enigma_edge.voice.audio import SoundDeviceSource
        try:
            SoundDeviceSource()
        except RuntimeError as e:
            print("ERR", e)
        """, dict(os.environ), tmp_path)
    assert "libportaudio2" in r.stdout, r.stdout + r.stderr
