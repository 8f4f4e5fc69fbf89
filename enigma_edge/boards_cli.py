"""`enigma-edge boards` (list the profiles, mark the detected one) and `enigma-edge doctor` (what
this machine is, what it has, and what will run where)."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import warnings
from pathlib import Path

from . import boards


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default=None, help="profile name or .toml path (overrides detection, "
                   "ENIGMA_EDGE_BOARD and the config file)")
    p.add_argument("--root", default="/", help="read procfs/sysfs under this directory "
                   "(a recorded tree, e.g. tests/fixtures/boards/pi_5)")
    p.add_argument("--config", default=None, help="config file (default: $ENIGMA_EDGE_CONFIG or "
                   "~/.config/enigma-edge/config.toml)")


def configure(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--check", metavar="FILE", help="validate a profile file and print it")
    p.set_defaults(func=run_boards)


def configure_doctor(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--model", default=None, help="GGUF to plan for (default: the board's default model)")
    p.set_defaults(func=run_doctor)


def run_boards(args) -> int:
    if args.check:
        p = boards.load_profile(args.check)
        print(f"{args.check}: valid profile {p.name!r} ({p.description})")
        return 0
    profiles = boards.load_all()
    det = boards.detect(args.root, profiles)
    chosen = None
    try:
        chosen = boards.select_board(args.board, root=args.root, config=args.config)
    except boards.BoardDetectionError:
        pass
    print(f"{'':2}{'board':9} {'cores':>5} {'llm':>4} {'audio':>5} {'n_ctx':>6} {'kv':5} "
          f"{'max model':>9} {'stt':14} {'offload':12} description")
    for name, p in profiles.items():
        mark = ("*" if det.profile == name else " ") + (">" if chosen and chosen.profile.name == name else " ")
        cores = p.cpu.cores or "auto"
        threads = p.llm.threads or "auto"
        print(f"{mark}{name:9} {cores:>5} {threads:>4} {p.llm.audio_reserved_cores:>5} {p.llm.n_ctx:>6} "
              f"{p.llm.kv_type:5} {p.llm.max_local_model_mb:>6} MB {p.stt.backend:14} {p.llm.offload:12} "
              f"{p.description}")
    print()
    print(f"* detected: {det.profile or 'none'} ({det.reason})")
    if chosen and chosen.source != "detected":
        print(f"> selected: {chosen.profile.name} (by {chosen.source})")
    elif chosen is None:
        print("> selected: none (give --board NAME)")
    print(f"profiles: {boards.profiles_dir()}")
    return 0


# ------------------------------------------------------------------------------------------------
# doctor

X86_ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                 "avx_vnni", "amx_int8")


def _mb(n) -> str:
    return "?" if n is None else f"{n / (1 << 20):.0f} MB"


def _section(title: str) -> None:
    print(f"\n== {title}")


def _line(key: str, value) -> None:
    print(f"  {key:16} {value}")


def _peers(cfg: dict) -> list:
    """Offload peers from the config's ``[[offload.peers]]`` tables (the offload room's format)."""
    from .offload.discovery import peers_from_config
    return peers_from_config(cfg.get("offload"))


def run_doctor(args) -> int:
    sel = boards.select_board(args.board, root=args.root, config=args.config)
    p, det = sel.profile, sel.detected
    cfg_path = Path(args.config) if args.config else boards.config_path()
    cfg = boards.read_config(cfg_path)
    peers = _peers(cfg)
    peer_urls = [x.url for x in peers]

    _section("board")
    _line("profile", f"{p.name} - {p.description} (chosen by {sel.source})")
    _line("detected", f"{det.profile or 'none'} ({det.reason})")
    if det.model:
        _line("model", det.model)
    if det.revision:
        r = det.revision
        _line("revision", f"{r['code']:x}: Pi {r['model']}, {r['processor']}, {r['memory_mb']} MB, "
                          f"made by {r['manufacturer']}")
    _line("cpu", f"{det.arch or '?'}, {det.cpus} CPUs (profile: {p.cpu.core}, {p.cpu.isa})")
    ram = f"{det.ram_mb} MB" if det.ram_mb else "?"
    if det.ram_mb and det.revision and det.ram_mb not in p.memory.ram_tiers_mb:
        ram += f" (not one of {p.name}'s tiers {p.memory.ram_tiers_mb})"
    _line("memory", f"RAM {ram}, MemTotal {_mb(det.mem_total)}, MemAvailable {_mb(det.mem_available)}")
    _line("config", f"{cfg_path}" + ("" if cfg_path.is_file() else " (absent)"))

    _section("ISA path")
    feats = det.features
    if det.arch in ("x86_64", "i686"):
        feats = [f for f in X86_ISA_FLAGS if f in det.features]
    _line("features", f"{' '.join(feats) or 'none'} (from {det.features_source})")
    if args.root != "/":
        _line("kernel path", "not shown for a recorded tree (the core reports only this machine's CPU)")
    else:
        try:
            import enigma_edge
            info = enigma_edge.cpu_info()
            _line("kernel path", f"{info.get('isa')} (available: {' '.join(info.get('available', []))}; "
                                 f"compiled: {' '.join(info.get('compiled', []))}; the core sees: "
                                 f"{' '.join(info.get('features', [])) or 'no SIMD features'})")
        except (ImportError, AttributeError) as exc:
            _line("kernel path", f"enigma_edge.cpu_info() is not available in this build ({exc})")
    missing = [f for f in p.cpu.features if f not in det.features]
    if missing and det.profile == p.name:
        _line("warning", f"profile expects {' '.join(missing)} but the CPU does not report it "
                         f"(32-bit OS on a 64-bit board?)")

    _section("memory plan (default model)" if not args.model else "memory plan")
    _doctor_plan(args, p, det, peer_urls)

    _section("thermal")
    from . import governor
    temps = governor.read_temperatures(args.root)
    _line("sensors", ", ".join(f"{k} {v:.1f} C" for k, v in temps.items()) or "none under "
          f"{Path(args.root) / 'sys/class/thermal'}")
    thr = governor.vcgencmd_throttled() if args.root == "/" else None
    _line("throttled", "vcgencmd not present" if thr is None and args.root == "/" else
          ("not read for a recorded tree" if thr is None else f"{thr:#x} {governor.throttled_flags(thr)}"))
    _line("limits", f"lower LLM threads at {p.thermal.throttle_c:.0f} C, restore at {p.thermal.restore_c:.0f} C, "
                    f"never below {p.thermal.min_threads}")

    _section("audio")
    if args.root != "/":
        _line("note", "audio, GPIO and serial devices below are this machine's, not the recorded tree's")
    _line("settings", f"{p.audio.rate} Hz, {p.audio.frames} frames/block "
                      f"({1000 * p.audio.frames / p.audio.rate:.0f} ms), device {p.audio.device!r}")
    _doctor_audio()

    _section("gpio")
    _doctor_gpio(p)

    _section("serial")
    _doctor_serial(p)

    _section("offload")
    _line("policy", p.llm.offload)
    _line("peers", ", ".join(f"{x.name} {x.url}" + (" (key set)" if x.key else "") for x in peers)
          if peers else f"none configured ([[offload.peers]] url = ... in {cfg_path})")

    _section("what runs where")
    plan = getattr(args, "_plan", None)
    if plan is None:
        llm = "unknown (no model to plan for)"
    elif plan.local:
        llm = (f"local, {p.llm_threads(det.cpus)} thread(s) (+{p.llm.audio_reserved_cores} core(s) kept for "
               f"audio), {plan.n_ctx} tokens, {plan.kv_type} KV")
    elif plan.decision == "offload":
        llm = f"peer {plan.peer}"
    else:
        llm = "nowhere: refused (see the memory plan)"
    _line("LLM", llm)
    stt_mod = {"vosk": "vosk", "pocketsphinx": "pocketsphinx", "faster-whisper": "faster_whisper"}[p.stt.backend]
    _line("speech-to-text", f"local, {p.stt.backend}" +
          ("" if importlib.util.find_spec(stt_mod) else " (not installed: pip install 'enigma-edge[voice]')"))
    _line("wake word, VAD", "local (audio cores)")
    _line("text-to-speech", "local, piper")
    _line("robot", f"gpio via {p.robot.pin_factory}, serial link on {p.serial.port}")
    return 0


def _doctor_plan(args, p, det, peers) -> None:
    from . import governor
    from .models import ModelNotFoundError, default_model_path
    args._plan = None
    try:
        path = Path(args.model) if args.model else default_model_path(assemble=False)
    except ModelNotFoundError as exc:
        _line("model", f"not available: {exc}")
        return
    if not path.is_file():
        _line("model", f"not found: {path}")
        return
    facts = governor.model_facts(path)
    _line("model", f"{path} ({facts.arch}, {facts.n_layer} layers, {facts.n_kv_heads} KV heads x "
                   f"{facts.head_dim_k}, context {facts.n_ctx_train}; read with {facts.reader})")
    if det.mem_available is None:
        _line("plan", "cannot plan: no MemAvailable in /proc/meminfo")
        return
    plan = governor.plan_model(facts, p, det.mem_available, peers)
    args._plan = plan
    _line("decision", plan.decision)
    _line("numbers", f"weights {_mb(plan.weights)} + KV {_mb(plan.kv)} ({plan.n_ctx} x {plan.kv_type}) + "
                     f"scratch {_mb(plan.scratch)} = {_mb(plan.need)} of {_mb(plan.budget)} budget")
    _line("why", plan.message)


def _doctor_audio() -> None:
    try:
        import sounddevice as sd
    except ImportError:
        _line("devices", "sounddevice is not installed (pip install 'enigma-edge[voice]')")
        return
    except OSError as exc:  # PortAudio library missing
        _line("devices", f"sounddevice cannot load PortAudio: {exc} (apt install libportaudio2)")
        return
    devs = sd.query_devices()
    if len(devs) == 0:
        _line("devices", "none (PortAudio sees no sound card)")
    for i, d in enumerate(devs):
        _line(f"[{i}]", f"{d['name']} (in {d['max_input_channels']}, out {d['max_output_channels']}, "
                        f"{d['default_samplerate']:.0f} Hz)")


def _doctor_gpio(p) -> None:
    pins = ", ".join(f"{k}={v}" for k, v in p.gpio.items())
    _line("pin map", pins)
    if importlib.util.find_spec("gpiozero") is None:
        _line("pin factory", "gpiozero is not installed (pip install 'enigma-edge[robot]')")
        return
    import importlib.metadata as md
    name = os.environ.get("GPIOZERO_PIN_FACTORY") or p.robot.pin_factory
    src = "GPIOZERO_PIN_FACTORY" if os.environ.get("GPIOZERO_PIN_FACTORY") else f"profile {p.name}"
    eps = {e.name: e for e in md.entry_points(group="gpiozero_pin_factories")}
    if name not in eps:
        _line("pin factory", f"{name} (from {src}) is not a gpiozero pin factory; have: {', '.join(sorted(eps))}")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            factory = eps[name].load()()
    except Exception as exc:  # each backend raises its own error type off a Pi
        _line("pin factory", f"{name} (from {src}): unavailable here: {type(exc).__name__}: {exc}")
        return
    try:
        _line("pin factory", f"{name} (from {src}): {type(factory).__name__} ok")
    finally:
        factory.close()


def _doctor_serial(p) -> None:
    try:
        from serial.tools import list_ports
    except ImportError:
        _line("ports", "pyserial is not installed (pip install 'enigma-edge[robot]')")
        return
    ports = list_ports.comports()
    _line("ports", ", ".join(f"{x.device} ({x.description})" for x in ports) or "none")
    have = any(x.device == p.serial.port for x in ports) or os.path.exists(p.serial.port)
    _line("robot link", f"{p.serial.port} at {p.serial.baud} baud: " + ("present" if have else "not present"))
