"""Offload and serving: speak the OpenAI Chat Completions dialect (with SSE streaming) both ways.

- :mod:`enigma_edge.offload.server` — ``enigma-edge serve``: an OpenAI-compatible HTTP server
  around any engine shaped like ``llama_cpp.Llama`` (``enigma_edge.LLM`` or llama-cpp-python).
- :mod:`enigma_edge.offload.client` — hands generation to desktop peers (enigma-edge, llama.cpp's
  server, Ollama, vLLM, llama-cpp-python's server) and falls back to the local engine with no seam.
- :mod:`enigma_edge.offload.discovery` — peers from config first, optional zeroconf browse.

Nothing is imported here: the server needs the ``[serve]`` extra (aiohttp); the client needs
only the standard library.
"""
