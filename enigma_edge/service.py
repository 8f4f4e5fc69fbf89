"""Daemon lifecycle: systemd notification, watchdog, atomic state files, config, the unit file.

Everything here is plain standard library so the service can start fast and be tested without
systemd: sd_notify is a datagram to the AF_UNIX socket named by ``NOTIFY_SOCKET``; the watchdog
interval comes from ``WATCHDOG_USEC``; state goes under ``$STATE_DIRECTORY`` (systemd) or the XDG
state directory; config comes from ``$CONFIGURATION_DIRECTORY`` or the XDG config directory.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> store = StateStore(d / "memory.json")
>>> store.save({"turns": [["hi", "hello"]]})
>>> store.load()
{'turns': [['hi', 'hello']]}
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import tomllib
import zlib
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("enigma_edge.service")

# --------------------------------------------------------------------------------------------------
# sd_notify


class Notifier:
    """Talks to systemd's notify socket; every call is a no-op when not run by systemd.

    >>> n = Notifier(env={})
    >>> n.enabled, n.watchdog_interval
    (False, None)
    """

    def __init__(self, env: dict[str, str] | None = None):
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):  # abstract namespace
            addr = "\0" + addr[1:]
        self._addr = addr or None
        self._sock: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_usec: int | None = None
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_usec = int(usec)

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings: half of WatchdogSec, as systemd recommends."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2e6

    def notify(self, *fields: str) -> bool:
        if self._addr is None:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.sendto("\n".join(fields).encode(), self._addr)
            return True
        except OSError as exc:  # systemd gone or socket removed: log once per call, never crash
            log.warning("sd_notify to %r failed: %s", self._addr, exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *( [f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Heartbeat:
    """Sends WATCHDOG=1 only while the main loop proves it is alive.

    The main loop calls :meth:`beat` each iteration; a background thread pings systemd every
    half watchdog interval *only if* a beat arrived since the previous ping, so a hung main loop
    stops the pings and systemd restarts the service. ``healthy`` can veto pings (e.g. while a
    required stage is down for longer than it may be).
    """

    def __init__(self, notifier: Notifier, healthy: Callable[[], bool] = lambda: True):
        self.notifier = notifier
        self.healthy = healthy
        self._beat = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0

    def beat(self) -> None:
        self._beat.set()

    def start(self) -> "Heartbeat":
        interval = self.notifier.watchdog_interval
        if interval is None or self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, args=(interval,), name="watchdog", daemon=True)
        self._thread.start()
        return self

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if self._beat.is_set() and self.healthy():
                self._beat.clear()
                if self.notifier.watchdog():
                    self.pings += 1
            else:
                log.error("main loop silent or unhealthy for %.1fs: withholding WATCHDOG=1", interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


# --------------------------------------------------------------------------------------------------
# paths and atomic state


def state_dir(app: str = "enigma-edge") -> Path:
    """``$STATE_DIRECTORY`` under systemd (first entry), else ``$XDG_STATE_HOME/enigma-edge``."""
    sd = os.environ.get("STATE_DIRECTORY")
    if sd:
        return Path(sd.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / app


def config_dir(app: str = "enigma-edge", env: dict[str, str] | None = None) -> Path:
    """``$CONFIGURATION_DIRECTORY`` under systemd, else ``$XDG_CONFIG_HOME/enigma-edge``."""
    env = os.environ if env is None else env
    cd = env.get("CONFIGURATION_DIRECTORY")
    if cd:
        return Path(cd.split(":")[0])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / app


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes, keep_backup: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash at any moment leaves the old or the new file.

    temp file in the same directory -> write -> fsync -> (hard-link the old file to ``.bak``) ->
    rename over the target -> fsync the directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    if keep_backup and path.exists():
        # the .bak is swapped in atomically too (link, then rename), so it is never torn either
        bak_tmp = path.with_name(f".{path.name}.bak.tmp")
        bak_tmp.unlink(missing_ok=True)
        os.link(path, bak_tmp)
        os.replace(bak_tmp, path.with_name(path.name + ".bak"))
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class StateError(ValueError):
    """A state file is unreadable or fails validation."""


class StateStore:
    """A JSON document saved atomically with a checksum; falls back to ``.bak`` when damaged.

    The file holds ``{"format": 1, "crc32": N, "data": ...}``; ``load`` validates the checksum
    and an optional ``validate(data)`` callable that raises on bad content.
    """

    FORMAT = 1

    def __init__(self, path: str | os.PathLike, validate: Callable[[Any], None] | None = None):
        self.path = Path(path)
        self.validate = validate

    @staticmethod
    def _encode(data: Any) -> bytes:
        body = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        doc = {"format": StateStore.FORMAT, "crc32": zlib.crc32(body.encode()), "data": data}
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1).encode()

    def _decode(self, raw: bytes, where: Path) -> Any:
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != self.FORMAT or "data" not in doc:
            raise StateError(f"{where}: not an enigma-edge state file (format {self.FORMAT})")
        body = json.dumps(doc["data"], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        if zlib.crc32(body.encode()) != doc.get("crc32"):
            raise StateError(f"{where}: checksum mismatch")
        if self.validate is not None:
            self.validate(doc["data"])
        return doc["data"]

    def save(self, data: Any) -> None:
        atomic_write(self.path, self._encode(data))

    def load(self, default: Any = None) -> Any:
        """The saved data; the ``.bak`` copy if the main file is damaged; ``default`` if neither."""
        errors = []
        for p in (self.path, self.path.with_name(self.path.name + ".bak")):
            try:
                raw = p.read_bytes()
            except FileNotFoundError:
                continue
            try:
                data = self._decode(raw, p)
            except (StateError, ValueError, TypeError) as exc:
                errors.append(str(exc))
                continue
            if errors:
                log.warning("state: %s; using %s", "; ".join(errors), p)
            return data
        if errors:
            log.error("state: no valid copy (%s); starting empty", "; ".join(errors))
        return default


# --------------------------------------------------------------------------------------------------
# config: TOML file, then ENIGMA_EDGE_* environment overrides


def _coerce(text: str, like: Any) -> Any:
    if isinstance(like, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {text!r}")
    if isinstance(like, int):
        return int(text)
    if isinstance(like, float):
        return float(text)
    if isinstance(like, list):
        return [s.strip() for s in text.split(",") if s.strip()]
    return text


def load_config(path: str | os.PathLike | None, defaults: dict[str, Any],
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """Merge ``defaults`` < TOML file < ``ENIGMA_EDGE_<SECTION>_<KEY>`` environment variables.

    Keys are validated: a key absent from ``defaults`` is an error naming it (typos must not be
    silently ignored); env values are converted to the default's type.

    >>> load_config(None, {"llm": {"threads": 2}}, env={"ENIGMA_EDGE_LLM_THREADS": "3"})
    {'llm': {'threads': 3}}
    """
    env = os.environ if env is None else env
    cfg = json.loads(json.dumps(defaults))  # deep copy of plain data
    if path is not None:
        p = Path(path)
        try:
            with p.open("rb") as f:
                data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config {p}: {exc}") from None
        _merge_checked(cfg, data, str(p))
    for section, values in cfg.items():
        items = values.items() if isinstance(values, dict) else [(None, values)]
        for key, value in items:
            name = "ENIGMA_EDGE_" + (f"{section}_{key}" if key else section).upper().replace("-", "_")
            if name in env:
                try:
                    coerced = _coerce(env[name], value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
                if key is None:
                    cfg[section] = coerced
                else:
                    values[key] = coerced
    return cfg


def _merge_checked(into: dict, data: dict, where: str, prefix: str = "") -> None:
    for k, v in data.items():
        if k not in into:
            raise ValueError(f"{where}: unknown key '{prefix}{k}' (known: {', '.join(sorted(into))})")
        if isinstance(into[k], dict):
            if not isinstance(v, dict):
                raise ValueError(f"{where}: {prefix}{k} must be a table")
            _merge_checked(into[k], v, where, f"{prefix}{k}.")
        else:
            want = type(into[k])
            ok = isinstance(v, want) or (want is float and isinstance(v, int) and not isinstance(v, bool))
            if into[k] is not None and not ok:
                raise ValueError(f"{where}: {prefix}{k} must be {want.__name__}, got {type(v).__name__}")
            into[k] = v


# --------------------------------------------------------------------------------------------------
# supervised stages: a crash restarts that stage with backoff, not the process


class Stage:
    """Runs ``target(stop_event)`` in a thread; restarts it with exponential backoff when it raises.

    ``failures`` counts crashes, ``last_error`` keeps the latest; ``healthy`` is False while the
    stage is down. A stage that returns normally is finished and not restarted.
    """

    def __init__(self, name: str, target: Callable[[threading.Event], None],
                 backoff: tuple[float, float] = (0.5, 30.0), on_error: Callable[[str, BaseException], None] | None = None):
        self.name = name
        self.target = target
        self.backoff = backoff
        self.on_error = on_error
        self.failures = 0
        self.last_error: BaseException | None = None
        self.healthy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Stage":
        self._thread = threading.Thread(target=self._run, name=f"stage-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            self.healthy = True
            started = time.monotonic()
            try:
                self.target(self._stop)
                self.healthy = False
                return
            except Exception as exc:  # noqa: BLE001 - a stage crash is reported and retried
                self.healthy = False
                self.failures += 1
                self.last_error = exc
                log.error("stage %s crashed (%s: %s); restarting in %.1fs", self.name,
                          type(exc).__name__, exc, delay)
                if self.on_error:
                    self.on_error(self.name, exc)
                if time.monotonic() - started > 60:  # it ran a while: start the backoff over
                    delay = self.backoff[0]
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.backoff[1])

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


# --------------------------------------------------------------------------------------------------
# systemd unit


UNIT_TEMPLATE = """\
[Unit]
Description=enigma-edge offline assistant ({board})
Documentation=file://{docs}
After=sound.target network-online.target
Wants=network-online.target
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start}
Restart=on-failure
RestartSec=3
WatchdogSec={watchdog}
TimeoutStartSec=180
TimeoutStopSec=20
KillSignal=SIGTERM
User={user}
SupplementaryGroups=gpio audio dialout
StateDirectory=enigma-edge
ConfigurationDirectory=enigma-edge
RuntimeDirectory=enigma-edge
Environment=PYTHONUNBUFFERED=1
Environment=HF_HUB_OFFLINE=1
# hardening that still leaves GPIO, serial and audio reachable
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0077
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
ProtectClock=yes
RestrictSUIDSGID=yes
RestrictRealtime=no
LockPersonality=yes
ProtectKernelLogs=yes
ProtectHostname=yes
ProtectProc=invisible
PrivateMounts=yes
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
# not set: MemoryDenyWriteExecute (cffi/ctypes callbacks of the audio stack need W+X trampolines),
# PrivateDevices (GPIO, serial and ALSA are devices), PrivateNetwork (the offload peer is remote).
RestrictNamespaces=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
DeviceAllow=/dev/gpiochip0 rw
DeviceAllow=/dev/gpiochip4 rw
DeviceAllow=/dev/gpiomem rw
DeviceAllow=char-ttyACM rw
DeviceAllow=char-ttyUSB rw
DeviceAllow=char-alsa rw
DevicePolicy=closed
ReadWritePaths=-/sys/class/gpio

[Install]
WantedBy=multi-user.target
"""


def render_unit(exec_start: str, user: str, board: str = "auto", watchdog_sec: int = 30,
                docs: str = "/usr/share/doc/enigma-edge/README.md") -> str:
    """The systemd unit text for the assistant service."""
    if watchdog_sec < 2:
        raise ValueError("watchdog_sec must be at least 2 seconds")
    return UNIT_TEMPLATE.format(exec_start=exec_start, user=user, board=board,
                                watchdog=f"{watchdog_sec}s", docs=docs)
