"""Board profiles and board detection: one TOML per board, checked on load, picked automatically.

A profile (``boards/<name>.toml``, shipped inside the package as ``enigma_edge/boards/``) says what a
board is (CPU, ISA, cores, RAM tiers) and how enigma-edge runs on it (LLM threads and the cores
kept free for audio, context length and KV cache type, default model and the largest model it may
load locally, STT backend, offload policy, thermal limits, GPIO pin map, serial port, audio
settings). The schema is the set of dataclasses below; every field carries its unit, range or
choices in ``metadata`` and docs/boards.md describes them. Loading rejects unknown keys, wrong
types and out-of-range values with a message naming the file and the key.

Detection reads files only, under a root directory (``/`` on a real board; a recorded tree in
tests): ``/proc/cpuinfo`` (Raspberry Pi revision code -> model, RAM; ``Features``/``flags``),
``/proc/device-tree/model``, ``/proc/meminfo`` and ``/proc/self/auxv`` (HWCAP bits).
Choice order: config file ``board = ...`` < ``ENIGMA_EDGE_BOARD`` < ``--board``, else detection.

>>> from enigma_edge import boards
>>> p = boards.load_profile("pi_zero2")
>>> p.cpu.cores, p.llm.threads, p.llm.audio_reserved_cores, p.gpio["motor_left"]
(4, 3, 1, [5, 6])
>>> boards.decode_revision(0x902120)["model"]
'Zero 2 W'
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import struct
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BoardProfileError", "BoardDetectionError", "Profile", "Detected", "Selection",
    "profiles_dir", "profile_names", "load_profile", "load_all", "validate",
    "decode_revision", "read_meminfo", "read_hwcap", "detect", "select_board", "config_path",
]

KV_TYPES = ("f32", "f16", "q8_0", "q4_0")
OFFLOAD_POLICIES = ("never", "when_too_big", "always")
STT_BACKENDS = ("vosk", "pocketsphinx", "faster-whisper")
ISAS = ("armv6", "armv7-a", "armv8-a", "armv8.2-a", "x86-64")
PIN_FACTORIES = ("lgpio", "rpigpio", "pigpio", "native", "mock")
AUDIO_RATES = (8000, 16000, 22050, 32000, 44100, 48000)
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 250000, 500000, 1000000)
BCM_PINS = range(0, 28)  # GPIO0..27 on the 40-pin header


class BoardProfileError(ValueError):
    """A profile file is missing, unreadable, or does not match the schema."""


class BoardDetectionError(RuntimeError):
    """No profile matches the machine (and none was chosen explicitly)."""


def _f(doc: str, *, range: tuple | None = None, choices: tuple | None = None, default=dataclasses.MISSING):
    md = {"doc": doc}
    if range is not None:
        md["range"] = range
    if choices is not None:
        md["choices"] = choices
    if default is dataclasses.MISSING:
        return field(metadata=md)
    return field(default_factory=lambda: list(default) if isinstance(default, list) else default, metadata=md)


# ------------------------------------------------------------------------------------------------
# schema


@dataclass(frozen=True)
class Detect:
    revision_types: list[int] = _f("Raspberry Pi new-style revision code 'type' values (bits 4-11)",
                                   range=(0, 255), default=[])
    models: list[str] = _f("prefixes of /proc/device-tree/model that mean this board", default=[])
    arch: list[str] = _f("CPU architectures (from /proc/cpuinfo) that mean this board when no "
                         "Raspberry Pi is found, e.g. x86_64", default=[])


@dataclass(frozen=True)
class Cpu:
    soc: str = _f("system on chip, e.g. BCM2712")
    core: str = _f("CPU core, e.g. Cortex-A76")
    isa: str = _f("instruction set the kernels target", choices=ISAS)
    features: list[str] = _f("HWCAP features the board has (names as in /proc/cpuinfo)")
    cores: int = _f("CPU cores; 0 = count at run time", range=(0, 1024))
    max_mhz: int = _f("maximum CPU clock in MHz; 0 = unknown", range=(0, 10000))


@dataclass(frozen=True)
class Memory:
    ram_tiers_mb: list[int] = _f("RAM sizes the board is sold with, MB", range=(128, 1 << 22))
    reserve_mb: int = _f("MB kept free for the OS and the audio stack when planning a model",
                         range=(0, 1 << 20))


@dataclass(frozen=True)
class Llm:
    threads: int = _f("LLM compute threads; 0 = CPUs - audio_reserved_cores", range=(0, 1024))
    audio_reserved_cores: int = _f("cores left free for audio capture, wake word and VAD", range=(0, 64))
    n_ctx: int = _f("context length in tokens (capped by the model's own)", range=(128, 1 << 20))
    min_ctx: int = _f("shortest context the governor may fall back to", range=(64, 1 << 20))
    kv_type: str = _f("KV cache element type", choices=KV_TYPES)
    default_model: str = _f("name of the model used when none is given")
    max_local_model_mb: int = _f("largest model (MB of weights) allowed to run on this board",
                                 range=(0, 1 << 22))
    offload: str = _f("when to run the LLM on a peer", choices=OFFLOAD_POLICIES)


@dataclass(frozen=True)
class Stt:
    backend: str = _f("speech-to-text engine", choices=STT_BACKENDS)


@dataclass(frozen=True)
class Thermal:
    throttle_c: float = _f("SoC temperature (C) at which LLM threads are lowered", range=(30.0, 120.0))
    restore_c: float = _f("temperature (C) at or below which threads are raised again "
                          "(must be below throttle_c: the gap is the hysteresis)", range=(20.0, 115.0))
    min_threads: int = _f("fewest LLM threads when hot", range=(1, 1024))
    poll_s: float = _f("seconds between temperature readings", range=(0.1, 600.0))


@dataclass(frozen=True)
class Robot:
    pin_factory: str = _f("gpiozero pin factory", choices=PIN_FACTORIES)


@dataclass(frozen=True)
class Serial:
    port: str = _f("serial device of the microcontroller link")
    baud: int = _f("baud rate", choices=BAUD_RATES)


@dataclass(frozen=True)
class Audio:
    rate: int = _f("capture sample rate, Hz", choices=AUDIO_RATES)
    frames: int = _f("frames per capture block", range=(16, 16384))
    device: str = _f("sounddevice/ALSA device name ('default' for the system default)")


@dataclass(frozen=True)
class Profile:
    """One board profile. ``gpio`` maps a device name to a BCM pin or a list of pins."""
    name: str = _f("profile name, the file's stem")
    description: str = _f("one line for humans")
    detect: Detect = _f("how detection recognises the board")
    cpu: Cpu = _f("CPU")
    memory: Memory = _f("memory")
    llm: Llm = _f("LLM settings")
    stt: Stt = _f("speech to text")
    thermal: Thermal = _f("thermal governor")
    gpio: dict[str, Any] = _f("device name -> BCM pin (int) or pins (list of 1-4 ints), GPIO0-27")
    robot: Robot = _f("robot settings")
    serial: Serial = _f("serial link")
    audio: Audio = _f("audio capture")
    path: str = field(default="", compare=False, metadata={"doc": "(set on load) the file read"})

    def llm_threads(self, n_cpus: int | None = None) -> int:
        """LLM threads to use: the profile's value, or CPUs minus the audio cores when it is 0."""
        if self.llm.threads:
            return self.llm.threads
        n = n_cpus or os.cpu_count() or 1
        return max(1, n - self.llm.audio_reserved_cores)

    def cpu_cores(self, n_cpus: int | None = None) -> int:
        return self.cpu.cores or n_cpus or os.cpu_count() or 1


# ------------------------------------------------------------------------------------------------
# loading and validation


def profiles_dir() -> Path:
    """The directory of the profiles shipped with the package."""
    return Path(__file__).resolve().parent / "boards"


def profile_names() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def load_profile(name_or_path: str | os.PathLike) -> Profile:
    """Load a shipped profile by name (``pi_4``) or any profile file by path; validated."""
    s = str(name_or_path)
    if s.endswith(".toml") or os.sep in s:
        path = Path(s).expanduser()
    else:
        path = profiles_dir() / f"{s}.toml"
        if not path.is_file():
            raise BoardProfileError(f"unknown board {s!r}; known boards: {', '.join(profile_names())}")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BoardProfileError(f"board profile not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BoardProfileError(f"{path}: not valid TOML: {exc}") from None
    return validate(data, where=str(path), stem=path.stem)


def load_all() -> dict[str, Profile]:
    return {n: load_profile(n) for n in profile_names()}


def _type_name(t) -> str:
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(t, getattr(t, "__name__", str(t)))


def _describe(v) -> str:
    return f"{_type_name(type(v))} {v!r}" if not isinstance(v, dict) else "table"


def _check_scalar(v, t, key: str, md: dict, where: str):
    if t is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, t) or (t is int and isinstance(v, bool)):
        raise BoardProfileError(f"{where}: {key}: expected {_type_name(t)}, got {_describe(v)}")
    if "range" in md:
        lo, hi = md["range"]
        if not lo <= v <= hi:
            raise BoardProfileError(f"{where}: {key}: {v!r} is out of range {lo}..{hi}")
    if "choices" in md and v not in md["choices"]:
        raise BoardProfileError(f"{where}: {key}: {v!r} is not one of {', '.join(map(str, md['choices']))}")
    if t is str and not v:
        raise BoardProfileError(f"{where}: {key}: must not be empty")
    return v


def _check_value(v, t, key: str, md: dict, where: str):
    origin = typing.get_origin(t)
    if origin is list:
        (item_t,) = typing.get_args(t)
        if not isinstance(v, list):
            raise BoardProfileError(f"{where}: {key}: expected a list of {_type_name(item_t)}, got {_describe(v)}")
        return [_check_scalar(x, item_t, f"{key}[{i}]", md, where) for i, x in enumerate(v)]
    return _check_scalar(v, t, key, md, where)


def _unknown(where: str, key: str, known) -> BoardProfileError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return BoardProfileError(f"{where}: unknown key {key!r} (known: {', '.join(known)}){hint}")


def _build(cls, data: dict, where: str, prefix: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "path"}
    for k in data:
        if k not in fields:
            raise _unknown(where, prefix + k, fields)
    kwargs = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in data:
            if f.default_factory is not dataclasses.MISSING or f.default is not dataclasses.MISSING:
                continue
            raise BoardProfileError(f"{where}: missing key {key!r} ({f.metadata.get('doc', '')})")
        v, t = data[name], hints[name]
        if dataclasses.is_dataclass(t):
            if not isinstance(v, dict):
                raise BoardProfileError(f"{where}: {key}: expected a table [{key}], got {_describe(v)}")
            kwargs[name] = _build(t, v, where, key + ".")
        elif name == "gpio" and cls is Profile:
            kwargs[name] = _check_gpio(v, where)
        else:
            kwargs[name] = _check_value(v, t, key, f.metadata, where)
    return cls(**kwargs)


_PIN_NAME = re.compile(r"(?:GPIO|BCM|BOARD|J8:|WPI)\d+")


def _check_gpio(v, where: str) -> dict[str, Any]:
    """``[gpio]``: device = pin | [pins] (1-4) | {role = pin} (e.g. a motor's forward/backward/
    enable, or the robot's ``[gpio.outputs]``). A pin is a BCM number 0-27 or a gpiozero pin name
    ("GPIO17", "BOARD11"); no pin may be used twice. What each device name means is the robot
    room's business (enigma_edge.robot.gpio.parse_pin_map)."""
    if not isinstance(v, dict):
        raise BoardProfileError(f"{where}: gpio: expected a table [gpio], got {_describe(v)}")
    used: dict[Any, str] = {}

    def pin(p, key):
        if isinstance(p, str):
            if not _PIN_NAME.fullmatch(p):
                raise BoardProfileError(f"{where}: {key}: {p!r} is not a pin (BCM 0-27 or a name like 'GPIO17')")
            m = re.fullmatch(r"(?:GPIO|BCM)(\d+)", p)
            ident = int(m.group(1)) if m else p
        else:
            ident = _check_scalar(p, int, key, {"range": (0, 27)}, where)
        if ident in used:
            raise BoardProfileError(f"{where}: {key}: GPIO{ident} is already used by {used[ident]}"
                                    if isinstance(ident, int) else f"{where}: {key}: {p} is already used by {used[ident]}")
        used[ident] = key
        return p

    out: dict[str, Any] = {}
    for dev, pins in v.items():
        key = f"gpio.{dev}"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", dev):
            raise BoardProfileError(f"{where}: {key}: device names are lower_case identifiers")
        if isinstance(pins, list):
            if not 1 <= len(pins) <= 4:
                raise BoardProfileError(f"{where}: {key}: a pin list has 1 to 4 pins, got {len(pins)}")
            out[dev] = [pin(p, f"{key}[{i}]") for i, p in enumerate(pins)]
        elif isinstance(pins, dict):
            if not 1 <= len(pins) <= 16:
                raise BoardProfileError(f"{where}: {key}: a pin table has 1 to 16 entries, got {len(pins)}")
            for role in pins:
                if not re.fullmatch(r"[a-z][a-z0-9_]*", role):
                    raise BoardProfileError(f"{where}: {key}.{role}: names are lower_case identifiers")
            out[dev] = {role: pin(p, f"{key}.{role}") for role, p in pins.items()}
        else:
            out[dev] = pin(pins, key)
    return out


def validate(data: dict, where: str = "<profile>", stem: str | None = None) -> Profile:
    """Check a parsed profile against the schema and the rules between fields; returns a Profile.

    >>> validate({"name": "x"})
    Traceback (most recent call last):
    ...
    enigma_edge.boards.BoardProfileError: <profile>: missing key 'description' (one line for humans)
    """
    p = _build(Profile, data, where, "")
    if stem is not None and p.name != stem:
        raise BoardProfileError(f"{where}: name: {p.name!r} must match the file name {stem!r}")
    if p.thermal.restore_c >= p.thermal.throttle_c:
        raise BoardProfileError(f"{where}: thermal.restore_c ({p.thermal.restore_c}) must be below "
                                f"thermal.throttle_c ({p.thermal.throttle_c})")
    if p.llm.min_ctx > p.llm.n_ctx:
        raise BoardProfileError(f"{where}: llm.min_ctx ({p.llm.min_ctx}) must not exceed llm.n_ctx ({p.llm.n_ctx})")
    if p.cpu.cores:
        if p.llm.threads + p.llm.audio_reserved_cores > p.cpu.cores:
            raise BoardProfileError(
                f"{where}: llm.threads ({p.llm.threads}) + llm.audio_reserved_cores "
                f"({p.llm.audio_reserved_cores}) exceed cpu.cores ({p.cpu.cores})")
        if p.llm.threads == 0:
            raise BoardProfileError(f"{where}: llm.threads: 0 (count at run time) needs cpu.cores = 0")
    if p.llm.threads and p.thermal.min_threads > p.llm.threads:
        raise BoardProfileError(f"{where}: thermal.min_threads ({p.thermal.min_threads}) exceeds "
                                f"llm.threads ({p.llm.threads})")
    if not p.memory.ram_tiers_mb:
        raise BoardProfileError(f"{where}: memory.ram_tiers_mb: list at least one RAM size")
    return dataclasses.replace(p, path=where)


# ------------------------------------------------------------------------------------------------
# detection

# Raspberry Pi new-style revision codes (raspberrypi.com documentation, "Raspberry Pi revision
# codes"): NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR -- bit 23 F = new style, MMM memory (bits 20-22),
# CCCC manufacturer, PPPP processor (bits 12-15), TTTTTTTT type (bits 4-11), RRRR revision.
PI_TYPES = {
    0x00: "A", 0x01: "B", 0x02: "A+", 0x03: "B+", 0x04: "2B", 0x05: "Alpha", 0x06: "CM1",
    0x08: "3B", 0x09: "Zero", 0x0A: "CM3", 0x0C: "Zero W", 0x0D: "3B+", 0x0E: "3A+",
    0x10: "CM3+", 0x11: "4B", 0x12: "Zero 2 W", 0x13: "400", 0x14: "CM4", 0x15: "CM4S",
    0x17: "5", 0x18: "CM5", 0x19: "500", 0x1A: "CM5 Lite",
}
PI_PROCESSORS = {0: "BCM2835", 1: "BCM2836", 2: "BCM2837", 3: "BCM2711", 4: "BCM2712"}
PI_MEMORY_MB = {0: 256, 1: 512, 2: 1024, 3: 2048, 4: 4096, 5: 8192, 6: 16384}
PI_MANUFACTURERS = {0: "Sony UK", 1: "Egoman", 2: "Embest", 3: "Sony Japan", 4: "Embest", 5: "Stadium"}
# Old-style codes (Pi 1 era, bit 23 clear): code -> (type, MB)
PI_OLD_CODES = {
    0x2: (0x01, 256), 0x3: (0x01, 256), 0x4: (0x01, 256), 0x5: (0x01, 256), 0x6: (0x01, 256),
    0x7: (0x00, 256), 0x8: (0x00, 256), 0x9: (0x00, 256), 0xD: (0x01, 512), 0xE: (0x01, 512),
    0xF: (0x01, 512), 0x10: (0x03, 512), 0x11: (0x06, 512), 0x12: (0x02, 256), 0x13: (0x03, 512),
    0x14: (0x06, 512), 0x15: (0x02, 256),
}


def decode_revision(code: int) -> dict[str, Any] | None:
    """Decode a Raspberry Pi revision code (the ``Revision`` line of /proc/cpuinfo).

    >>> r = decode_revision(0xd04170)
    >>> r["model"], r["processor"], r["memory_mb"], r["new_style"]
    ('5', 'BCM2712', 8192, True)
    >>> decode_revision(0x000e)["memory_mb"]
    512
    """
    if code & (1 << 23):
        t = (code >> 4) & 0xFF
        return {
            "code": code, "new_style": True, "type": t, "model": PI_TYPES.get(t, f"unknown type {t:#x}"),
            "revision": code & 0xF,
            "processor": PI_PROCESSORS.get((code >> 12) & 0xF, f"unknown ({(code >> 12) & 0xF})"),
            "manufacturer": PI_MANUFACTURERS.get((code >> 16) & 0xF, f"unknown ({(code >> 16) & 0xF})"),
            "memory_mb": PI_MEMORY_MB.get((code >> 20) & 0x7),
            "warranty_void": bool(code & (1 << 25)),
        }
    old = PI_OLD_CODES.get(code & 0xFFFFFF)
    if old is None:
        return None
    t, mb = old
    return {"code": code, "new_style": False, "type": t, "model": PI_TYPES[t], "revision": None,
            "processor": "BCM2835", "manufacturer": None, "memory_mb": mb,
            "warranty_void": bool(code & 0x1000000)}


def _read_text(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None


def read_cpuinfo(root: str | os.PathLike = "/") -> dict[str, Any]:
    """The interesting fields of /proc/cpuinfo: per-CPU blocks counted, board lines kept."""
    text = _read_text(Path(root), "proc/cpuinfo") or ""
    info: dict[str, Any] = {"processors": 0}
    for line in text.splitlines():
        if ":" not in line:
            continue
        k, _, v = line.partition(":")
        k, v = k.strip(), v.strip()
        if k == "processor":
            info["processors"] += 1
        info.setdefault(k, v)  # first CPU's value (cores are identical on these boards)
    return info


def cpu_arch(cpuinfo: dict[str, Any]) -> str | None:
    """Userland architecture the kernel reports: x86_64, aarch64, armv8l (32-bit on a 64-bit
    kernel), armv7l or armv6l."""
    if "flags" in cpuinfo or "vendor_id" in cpuinfo:
        return "x86_64" if " lm " in f" {cpuinfo.get('flags', '')} " else "i686"
    arch = cpuinfo.get("CPU architecture")
    if arch is None:
        return None
    # a 32-bit process sees "(v6l)"/"(v7l)", or "(v8l)" under a 64-bit kernel (32-bit Raspberry
    # Pi OS with its arm64 kernel), and 32-bit HWCAP names
    name = cpuinfo.get("model name", "")
    for tag in ("v6l", "v7l", "v8l"):
        if f"({tag})" in name:
            return f"arm{tag}"
    if arch.strip() == "8" or arch.startswith("AArch64"):
        return "aarch64"
    return "armv7l"


def read_meminfo(root: str | os.PathLike = "/") -> dict[str, int]:
    """/proc/meminfo in bytes (MemTotal, MemAvailable, ...)."""
    text = _read_text(Path(root), "proc/meminfo")
    if text is None:
        raise FileNotFoundError(f"{Path(root) / 'proc/meminfo'}: cannot read memory information")
    out = {}
    for line in text.splitlines():
        m = re.match(r"(\w[\w()]*):\s+(\d+)(?:\s+kB)?", line)
        if m:
            out[m.group(1)] = int(m.group(2)) * (1024 if line.rstrip().endswith("kB") else 1)
    return out


# Linux HWCAP bits (arch/arm64/include/uapi/asm/hwcap.h, arch/arm/include/uapi/asm/hwcap.h),
# named as /proc/cpuinfo's Features line names them.
AARCH64_HWCAP = ["fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp",
                 "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4",
                 "asimddp", "sha512", "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb",
                 "paca", "pacg"]
AARCH64_HWCAP2 = ["dcpodp", "sve2", "sveaes", "svepmull", "svebitperm", "svesha3", "svesm4", "flagm2",
                  "frint", "svei8mm", "svef32mm", "svef64mm", "svebf16", "i8mm", "bf16", "dgh", "rng", "bti"]
ARM_HWCAP = ["swp", "half", "thumb", "26bit", "fastmult", "fpa", "vfp", "edsp", "java", "iwmmxt", "crunch",
             "thumbee", "neon", "vfpv3", "vfpv3d16", "tls", "vfpv4", "idiva", "idivt", "vfpd32", "lpae",
             "evtstrm"]
ARM_HWCAP2 = ["aes", "pmull", "sha1", "sha2", "crc32"]
AT_HWCAP, AT_HWCAP2 = 16, 26


def _bits(value: int, names: list[str]) -> list[str]:
    return [n for i, n in enumerate(names) if value >> i & 1]


def read_hwcap(root: str | os.PathLike = "/", arch: str | None = None) -> dict[str, Any] | None:
    """HWCAP/HWCAP2 from ``proc/self/auxv`` under root, decoded for ARM; None if absent.

    The word size follows ``arch`` (32-bit words for armv6l/armv7l), default: this process's.
    """
    try:
        raw = (Path(root) / "proc/self/auxv").read_bytes()
    except (FileNotFoundError, PermissionError):
        return None
    if arch is None:
        arch = os.uname().machine
        if struct.calcsize("P") == 4 and arch.startswith(("arm", "aarch64")):
            arch = "armv8l" if arch in ("aarch64", "armv8l") else arch  # 32-bit process, 64-bit kernel
    fmt = "<II" if arch in ("armv6l", "armv7l", "armv8l", "i686") else "<QQ"
    size = struct.calcsize(fmt)
    vals = {}
    for off in range(0, len(raw) - size + 1, size):
        t, v = struct.unpack_from(fmt, raw, off)
        if t == 0:
            break
        vals[t] = v
    hw, hw2 = vals.get(AT_HWCAP, 0), vals.get(AT_HWCAP2, 0)
    if arch == "aarch64":
        feats = _bits(hw, AARCH64_HWCAP) + _bits(hw2, AARCH64_HWCAP2)
    elif arch in ("armv6l", "armv7l", "armv8l"):
        feats = _bits(hw, ARM_HWCAP) + _bits(hw2, ARM_HWCAP2)
    else:
        feats = []  # x86 HWCAP is cpuid(1).edx; the cpuinfo flags say more
    return {"hwcap": hw, "hwcap2": hw2, "features": feats}


@dataclass
class Detected:
    """What the machine says about itself (everything read under ``root``)."""
    profile: str | None
    reason: str
    model: str | None = None          # /proc/device-tree/model (or cpuinfo Model / model name)
    revision: dict | None = None      # decoded revision code
    arch: str | None = None
    cpus: int = 0
    features: list[str] = field(default_factory=list)
    features_source: str = ""
    ram_mb: int | None = None         # from the revision code (board's RAM), else MemTotal
    mem_total: int | None = None      # bytes
    mem_available: int | None = None  # bytes


def detect(root: str | os.PathLike = "/", profiles: dict[str, Profile] | None = None) -> Detected:
    """Identify the board from files under ``root``; ``profile`` is None when nothing matches."""
    root = Path(root)
    profiles = load_all() if profiles is None else profiles
    cpu = read_cpuinfo(root)
    arch = cpu_arch(cpu)
    dt_model = _read_text(root, "proc/device-tree/model")
    model = dt_model.rstrip("\x00\n ") if dt_model else cpu.get("Model") or cpu.get("model name")
    rev = None
    if "Revision" in cpu:
        try:
            rev = decode_revision(int(cpu["Revision"], 16))
        except ValueError:
            rev = None
    try:
        mem = read_meminfo(root)
    except FileNotFoundError:
        mem = {}
    hw = read_hwcap(root, arch)
    if hw and hw["features"]:
        feats, fsrc = hw["features"], "auxv HWCAP"
    elif cpu.get("Features") or cpu.get("flags"):
        feats, fsrc = (cpu.get("Features") or cpu.get("flags")).split(), "/proc/cpuinfo"
    else:
        feats, fsrc = [], "none"
    d = Detected(profile=None, reason="", model=model, revision=rev, arch=arch,
                 cpus=cpu["processors"], features=feats, features_source=fsrc,
                 mem_total=mem.get("MemTotal"), mem_available=mem.get("MemAvailable"))
    d.ram_mb = (rev or {}).get("memory_mb") or (d.mem_total // (1 << 20) if d.mem_total else None)

    if rev is not None:
        for name, p in profiles.items():
            if rev["type"] in p.detect.revision_types:
                d.profile = name
                d.reason = (f"revision code {rev['code']:x}: Raspberry Pi {rev['model']}, {rev['processor']}, "
                            f"{rev['memory_mb']} MB")
                return d
    if model:
        best = max(((len(pre), name) for name, p in profiles.items() for pre in p.detect.models
                    if model.startswith(pre)), default=None)
        if best:
            d.profile = best[1]
            d.reason = f"device-tree model {model!r}"
            return d
    if arch:
        for name, p in profiles.items():
            if arch in p.detect.arch:
                d.profile = name
                d.reason = f"CPU architecture {arch}" + (f" ({model})" if model else "")
                return d
    d.reason = f"no profile matches (model {model!r}, arch {arch})"
    return d


# ------------------------------------------------------------------------------------------------
# selection: config file < ENIGMA_EDGE_BOARD < --board < (otherwise) detection


def config_path(env: dict[str, str] | None = None) -> Path:
    """``$ENIGMA_EDGE_CONFIG``, else ``config.toml`` in the service's configuration directory."""
    from .service import config_dir
    env = os.environ if env is None else env
    if env.get("ENIGMA_EDGE_CONFIG"):
        return Path(env["ENIGMA_EDGE_CONFIG"]).expanduser()
    return config_dir(env=env) / "config.toml"


def read_config(path: Path) -> dict[str, Any]:
    """The user's config file (empty when absent). Only ``board`` and ``[offload]`` are read here."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise BoardProfileError(f"config {path}: not valid TOML: {exc}") from None


@dataclass
class Selection:
    profile: Profile
    source: str          # "--board", "ENIGMA_EDGE_BOARD", "config file <path>", "detected"
    detected: Detected


def select_board(cli_board: str | None = None, env: dict[str, str] | None = None,
                 root: str | os.PathLike = "/", config: str | os.PathLike | None = None) -> Selection:
    """The profile to run with and why. ``auto`` (or nothing) at a level means "no choice here".

    >>> select_board("pi_5", env={}).source
    '--board'
    """
    env = os.environ if env is None else env
    cfg_path = Path(config) if config is not None else config_path(env)
    profiles = load_all()
    det = detect(root, profiles)
    cfg_board = read_config(cfg_path).get("board")
    if cfg_board is not None and not isinstance(cfg_board, str):
        raise BoardProfileError(f"config {cfg_path}: board: expected string, got {_describe(cfg_board)}")
    for value, source in ((cli_board, "--board"), (env.get("ENIGMA_EDGE_BOARD"), "ENIGMA_EDGE_BOARD"),
                          (cfg_board, f"config file {cfg_path}")):
        if value and value != "auto":
            try:
                return Selection(load_profile(value), source, det)
            except BoardProfileError as exc:
                raise BoardProfileError(f"{source}: {exc}") from None
    if det.profile is None:
        raise BoardDetectionError(f"cannot detect the board: {det.reason}; choose one with --board, "
                                  f"ENIGMA_EDGE_BOARD or 'board = ...' in {cfg_path} "
                                  f"(known: {', '.join(profiles)})")
    return Selection(profiles[det.profile], "detected", det)
