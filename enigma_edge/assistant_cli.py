"""`enigma-edge assistant`: build the always-on assistant from the board profile and config.

Modes:
  --text "..."     one utterance given as text (no audio needed)
  --wav FILE       the voice pipeline over a recording: wake word, VAD, STT, reply audio
  --service        live microphone and speaker, systemd notify/watchdog, runs until SIGTERM

Config: TOML at ``$ENIGMA_EDGE_CONFIG`` or ``config.toml`` in ``$CONFIGURATION_DIRECTORY`` /
``~/.config/enigma-edge``; every key can be overridden by ``ENIGMA_EDGE_<SECTION>_<KEY>``.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("enigma_edge.assistant")

DEFAULTS = {
    "board": "auto",
    "llm": {"enabled": True, "model": "", "n_ctx": 0, "kv_type": "", "threads": 0, "max_tokens": 48},
    "voice": {"wake": "okay_nabu", "wake_engine": "micro", "stt": "", "dictation": True,
              "input_device": "", "output_device": "", "vosk_model": "",
              "no_speech_s": 4.0, "max_utterance_s": 10.0},
    "robot": {"enabled": True, "light_output": "led"},
    "memory": {"max_chars": 3000},
    "offload": {"peers": []},
}


def configure(p) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--text", help="handle this utterance (as if it had been heard)")
    mode.add_argument("--wav", type=Path, help="run the voice pipeline over this WAV file")
    mode.add_argument("--service", action="store_true", help="live audio as a systemd service")
    p.add_argument("--reply-wav", type=Path, default=None,
                   help="write the spoken reply here (default reply.wav with --text/--wav)")
    p.add_argument("--board", default=None, help="board profile (default: detect)")
    p.add_argument("--config", type=Path, default=None, help="config file (TOML)")
    p.add_argument("-m", "--model", default=None, help="GGUF model (default: the board's default model)")
    p.add_argument("--no-llm", action="store_true", help="commands only, no language model")
    p.add_argument("--no-memory", action="store_true", help="do not load or save the conversation")
    p.add_argument("--json", action="store_true", help="print each turn as one JSON line")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------------------------------


class Built:
    """Everything the assistant owns; ``close()`` stops the motors first, then the rest."""

    def __init__(self):
        self.profile = None
        self.selection_source = ""
        self.config: dict = {}
        self.llm = None
        self.devices = None
        self.assistant = None
        self.plan_message = ""
        self.load_s: dict[str, float] = {}

    def close(self) -> None:
        if self.devices is not None:
            self.devices.close()      # motors stop and outputs go off before anything else
            self.devices = None
        if self.llm is not None:
            self.llm.close()
            self.llm = None


def build(args) -> Built:
    from . import boards
    from .assistant import Assistant
    from .assistant_parts import Memory
    from .service import load_config, state_dir

    b = Built()
    cfg_path = args.config or boards.config_path()
    b.config = cfg = load_config(cfg_path if Path(cfg_path).is_file() else None, DEFAULTS)
    sel = boards.select_board(args.board or (cfg["board"] if cfg["board"] != "auto" else None),
                              config=cfg_path)
    b.profile, b.selection_source = sel.profile, sel.source
    prof = b.profile

    # robot: gpiozero devices from the profile's pin map
    if cfg["robot"]["enabled"] and prof.gpio:
        t = time.perf_counter()
        if "GPIOZERO_PIN_FACTORY" not in os.environ and prof.robot.pin_factory:
            os.environ["GPIOZERO_PIN_FACTORY"] = prof.robot.pin_factory
            if prof.robot.pin_factory == "mock":  # motors need PWM pins in gpiozero's mock backend
                os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
        if os.environ.get("GPIOZERO_PIN_FACTORY") == "mock":
            import warnings
            from gpiozero import DistanceSensorNoEcho, PWMSoftwareFallback
            # mock pins have nothing wired to the echo pin and no hardware timing: these warnings
            # are about the mock, not about the robot
            warnings.simplefilter("ignore", DistanceSensorNoEcho)
            warnings.simplefilter("ignore", PWMSoftwareFallback)
        from .robot.gpio import RobotDevices
        from .robot.tools import ToolRunner
        b.devices = RobotDevices(prof.gpio)
        runner = ToolRunner(b.devices)
        b.load_s["robot"] = time.perf_counter() - t
    else:
        runner = None

    # language model: planned by the governor, loaded locally or reached through a peer
    offload = None
    if cfg["llm"]["enabled"] and not args.no_llm:
        from .governor import model_facts, plan_model
        from .models import resolve_model
        model = resolve_model(args.model or cfg["llm"]["model"] or None)
        peers = cfg["offload"]["peers"]
        plan = plan_model(model_facts(model), prof, _mem_available(), [p.get("url", "") for p in peers],
                          n_ctx=cfg["llm"]["n_ctx"] or None, kv_type=cfg["llm"]["kv_type"] or None)
        b.plan_message = plan.message
        log.info("memory plan: %s", plan.message)
        if plan.decision == "refuse":
            raise RuntimeError(plan.message)
        t = time.perf_counter()
        if plan.local:
            from .llm import LLM
            b.llm = LLM(model, n_ctx=plan.n_ctx, n_threads=cfg["llm"]["threads"] or prof.llm_threads(),
                        kv_type=plan.kv_type, progress=True)
        else:
            from .offload.client import OffloadClient
            offload = OffloadClient(peers, local=None, policy=prof.llm.offload)
        b.load_s["llm"] = time.perf_counter() - t

    memory = None
    if not args.no_memory:
        memory = Memory(max_chars=cfg["memory"]["max_chars"], path=state_dir() / "memory.json")
    b.assistant = Assistant(llm=b.llm, robot=runner, offload=offload, memory=memory,
                            light_output=cfg["robot"]["light_output"], max_tokens=cfg["llm"]["max_tokens"])
    t = time.perf_counter()
    b.assistant.warm()
    b.load_s["warm"] = time.perf_counter() - t
    return b


def _mem_available() -> int:
    from .boards import read_meminfo
    info = read_meminfo("/")
    return int(info.get("MemAvailable", info.get("MemTotal", 0)))


def _stt(cfg: dict, prof):
    """Commands first (pocketsphinx JSGF grammar with rejection); anything it rejects goes to the
    board's dictation engine (faster-whisper tiny.en) when dictation is on."""
    from .voice.stt import STT, PocketSphinxSTT, make_stt

    name = cfg["voice"]["stt"] or prof.stt.backend
    commands = PocketSphinxSTT()
    if not cfg["voice"]["dictation"] or name == "pocketsphinx":
        return commands
    if name == "vosk":
        if not cfg["voice"]["vosk_model"]:
            raise ValueError("the board's STT backend is vosk: set [voice] vosk_model = \"/path/to/"
                             "vosk-model-small-en-us\" in the config (or ENIGMA_EDGE_VOICE_VOSK_MODEL), "
                             "or [voice] stt = \"pocketsphinx\"")
        dictation = make_stt(name, model_dir=cfg["voice"]["vosk_model"])
    else:
        dictation = make_stt(name)

    class CommandsThenDictation(STT):
        name = f"pocketsphinx+{dictation.name}"

        def _decode(self, pcm):
            tr = commands.transcribe(pcm)
            if not tr.rejected:
                return tr
            return dictation.transcribe(pcm)

        def close(self):
            commands.close()
            dictation.close()
            super().close()

    return CommandsThenDictation()


def _print_turn(rec, as_json: bool) -> None:
    if as_json:
        print(json.dumps(rec.as_dict()), flush=True)
        return
    print(f"transcript: {rec.transcript}")
    if rec.action:
        a = rec.action
        status = "done" if a.get("ok") else f"refused ({a.get('error', '')})"
        print(f"action:     {a.get('tool')} {json.dumps(a.get('arguments'))} -> {status}")
    else:
        print(f"action:     none ({rec.path})")
    print(f"reply:      {rec.reply}")
    print("timings:    " + ", ".join(f"{k[:-2]} {v * 1000:.1f} ms" for k, v in rec.timings.items()), flush=True)


def run(args) -> int:
    # the service logs every event to journald; interactive modes print them instead
    logging.basicConfig(level=logging.INFO if args.service or args.verbose else logging.WARNING,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args.service:
        return run_service(args)
    if not args.text and not args.wav:
        raise ValueError("give --text TEXT, --wav FILE or --service (see --help)")
    reply_wav = args.reply_wav or Path("reply.wav")
    t0 = time.perf_counter()
    b = build(args)
    try:
        print(f"board:      {b.profile.name} ({b.selection_source})")
        if b.plan_message:
            print(f"model:      {b.plan_message}")
        if os.environ.get("GPIOZERO_PIN_FACTORY") == "mock":
            print("gpio:       gpiozero MockFactory (no GPIO header on this machine)")
        from .voice.tts import PiperTTS
        if args.text:
            from .voice.audio import WavSink
            with PiperTTS(rate=22050) as tts:
                print(f"loaded in   {time.perf_counter() - t0:.2f} s", flush=True)
                reply = "".join(b.assistant.respond(args.text, source="voice"))
                t = time.perf_counter()
                pcm = tts.synthesize(reply) if reply else b""
                b.assistant.last.timings["tts_s"] = time.perf_counter() - t
                with WavSink(reply_wav, rate=tts.rate) as sink:
                    sink.write(pcm)
            _print_turn(b.assistant.last, args.json)
            print(f"reply audio: {reply_wav} ({len(pcm) / 2 / tts.rate:.2f} s)")
            return 0
        return _run_wav(args, b, reply_wav, t0)
    finally:
        b.close()


def _run_wav(args, b: Built, reply_wav: Path, t0: float) -> int:
    from .voice.audio import WavSink, WavSource
    from .voice.pipeline import VoicePipeline
    from .voice.tts import PiperTTS
    from .voice.wake import WakeWord
    cfg = b.config
    records = []

    def handler(tr):
        yield from b.assistant.handler(tr)
        records.append(b.assistant.last)

    with WavSource(args.wav) as src, WavSink(reply_wav) as sink, \
            WakeWord(cfg["voice"]["wake"], engine=cfg["voice"]["wake_engine"]) as wake, \
            _stt(cfg, b.profile) as stt, PiperTTS(rate=sink.rate) as tts:
        print(f"loaded in   {time.perf_counter() - t0:.2f} s; listening to {args.wav}", flush=True)
        p = VoicePipeline(src, sink, wake, stt, tts, handler,
                          no_speech_s=cfg["voice"]["no_speech_s"],
                          max_utterance_s=cfg["voice"]["max_utterance_s"],
                          on_event=(None if args.json else lambda e: print(e, flush=True)))
        p.run()
    for rec, turn in zip(records, [t for t in p.turns if t.transcript]):
        rec.timings.update({k: v for k, v in turn.as_dict().items() if k.endswith("_s") and v is not None})
        _print_turn(rec, args.json)
    if not p.turns:
        print("no wake word heard")
    print(f"reply audio: {reply_wav}")
    return 0


# --------------------------------------------------------------------------------------------------
# service mode


def run_service(args) -> int:
    """Live audio until SIGTERM. READY=1 once everything is loaded; WATCHDOG=1 from the main loop
    while audio flows or the voice stage is being restarted (a hung pipeline stops the pings and
    systemd restarts us); STOPPING=1 and motors stopped first on SIGTERM. A crashed voice stage
    restarts with backoff."""
    from .service import Heartbeat, Notifier, Stage
    from .voice.audio import SoundDeviceSink, SoundDeviceSource
    from .voice.pipeline import VoicePipeline
    from .voice.tts import PiperTTS
    from .voice.wake import WakeWord

    notifier = Notifier()
    notifier.status("loading")
    b = build(args)
    cfg = b.config
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    progress = {"samples": 0}

    def voice(stage_stop: threading.Event) -> None:
        default = b.profile.audio.device if b.profile.audio.device != "default" else None
        with SoundDeviceSource(device=cfg["voice"]["input_device"] or default) as src, \
                SoundDeviceSink(device=cfg["voice"]["output_device"] or default) as sink, \
                WakeWord(cfg["voice"]["wake"], engine=cfg["voice"]["wake_engine"]) as wake, \
                _stt(cfg, b.profile) as stt, PiperTTS(rate=sink.rate) as tts:
            def handler(tr):
                yield from b.assistant.handler(tr)
                rec = b.assistant.last
                log.info("turn: %s", json.dumps(rec.as_dict()))

            p = VoicePipeline(src, sink, wake, stt, tts, handler,
                              no_speech_s=cfg["voice"]["no_speech_s"],
                              max_utterance_s=cfg["voice"]["max_utterance_s"],
                              on_event=lambda e: log.info("%s", e))
            orig_read = src.read

            def counted_read(n=160):   # runs in the pipeline's thread, once per 10 ms frame
                if stage_stop.is_set():
                    p.stop()
                data = orig_read(n)
                progress["samples"] += n
                return data
            src.read = counted_read
            p.run()
            if not stage_stop.is_set():
                raise RuntimeError("audio source ended")

    stage = Stage("voice", voice).start()
    thermal = None
    if b.llm is not None:   # hot SoC -> fewer LLM threads, restored when it cools (logged)
        from .governor import ThermalWatcher
        thermal = ThermalWatcher(b.profile, lambda n, why: b.llm.set_threads(n),
                                 threads=b.llm.n_threads).start()
    hb = Heartbeat(notifier).start()
    notifier.ready(f"board {b.profile.name}; listening")
    log.info("ready: board %s (%s)", b.profile.name, b.selection_source)
    last = -1
    try:
        while not stop.wait(0.5):
            # Healthy: audio flows through the pipeline, or the voice stage is down and its
            # supervisor is restarting it with backoff (a lost microphone restarts that stage, not
            # the process). Hung: the stage runs but no audio moves -> no ping -> systemd restarts us.
            if progress["samples"] != last or not stage.healthy:
                last = progress["samples"]
                hb.beat()
    finally:
        notifier.stopping()
        log.info("stopping: motors first")
        if b.devices is not None:
            b.devices.stop()
        stage.stop()
        if thermal is not None:
            thermal.close()
        hb.stop()
        b.close()
        notifier.close()
    return 0
