"""`enigma-edge` command line: one sub-command per job, each defined in its own room.

Sub-commands are registered by name -> "module:function". The function receives the argparse
sub-parser and fills in its arguments and ``set_defaults(func=...)``. Modules are imported only
when their command runs (or for ``--help``), so ``enigma-edge --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module:function that configures the sub-parser, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("enigma_edge.gguf_cli:configure", "show a GGUF model's metadata, tensors and RAM needs"),
    "assistant": ("enigma_edge.assistant_cli:configure", "the voice assistant: --text, --wav or --service"),
    "generate": ("enigma_edge.llm:configure_generate", "continue a prompt with a local GGUF model (streams)"),
    "chat": ("enigma_edge.llm:configure_chat", "interactive streaming chat with a local GGUF model"),
    "install-service": ("enigma_edge.service_cli:configure", "write the systemd unit for the assistant"),
    "robot": ("enigma_edge.robot.daemon:configure", "robot daemon: owns the GPIO devices, JSON-lines commands on a unix socket"),
    "listen": ("enigma_edge.voice.pipeline:configure", "run the voice pipeline over a WAV file: wake, transcript, reply, timings"),
    "say": ("enigma_edge.voice.tts:configure", "speak text with piper into a WAV file"),
    "wyoming": ("enigma_edge.voice.wyoming:configure", "serve wake/STT/TTS or a satellite over the Wyoming protocol (Home Assistant)"),
    "boards": ("enigma_edge.boards_cli:configure", "list the board profiles and mark the detected one"),
    "doctor": ("enigma_edge.boards_cli:configure_doctor", "check this machine: board, ISA, memory plan, devices"),
    "serve": ("enigma_edge.offload.server:configure", "OpenAI-compatible HTTP server (chat/completions, SSE)"),
}


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enigma-edge",
        description="Offline AI runtime for Raspberry Pi: LLM, voice, robots, offload.",
    )
    from . import __version__
    parser.add_argument("--version", action="version", version=f"enigma-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (target, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if load == name:
            module, func = target.split(":")
            getattr(importlib.import_module(module), func)(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # only configure the sub-command being run (keeps start-up cheap)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(load=wanted if wanted in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as exc:  # user-facing errors: one clear line, no traceback
        print(f"enigma-edge {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
