"""Offline voice: audio I/O, wake word, VAD, speech-to-text, text-to-speech, pipeline, Wyoming.

Every engine is imported lazily inside the class that uses it, so ``import enigma_edge.voice``
stays cheap. The stages know nothing of each other; :mod:`enigma_edge.voice.pipeline` wires them.

Audio everywhere is 16 kHz, mono, signed 16-bit little-endian PCM (``bytes``), in 10 ms frames
(160 samples) unless a stage says otherwise.
"""
RATE = 16000          # samples per second everywhere inside the voice room
WIDTH = 2             # bytes per sample (int16)
CHANNELS = 1
FRAME_SAMPLES = 160   # 10 ms
FRAME_BYTES = FRAME_SAMPLES * WIDTH
