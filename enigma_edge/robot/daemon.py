"""``enigma-edge robot``: a long-running process that owns the robot's devices and takes commands
as JSON lines on a unix socket.

Socket: ``--socket PATH``, default ``$XDG_RUNTIME_DIR/enigma-edge/robot.sock`` (or
``/run/enigma-edge/robot.sock`` when XDG_RUNTIME_DIR is unset), mode 0660. One JSON object per
line in, one per line out (``id`` is echoed back when given)::

    {"id": 1, "tool": "move", "arguments": {"direction": "forward", "speed": 0.5, "duration": 2}}
    -> {"id": 1, "ok": true, "result": {"tool": "move", "arguments": {...}}}
    {"cmd": "estop"}      emergency stop: motors off now, pending timed moves cancelled
    {"cmd": "status"}     device values read back (gpiozero; or the MCU's STATUS with --serial)
    {"cmd": "tools"}      the JSON schemas (see enigma_edge.robot.tools)
    {"cmd": "ping"}
    errors -> {"ok": false, "error": "move.speed: must be <= 1.0, got 3"}

Tool calls are validated against the tool schemas before anything moves. SIGTERM or SIGINT stops
the motors, switches every output off, removes the socket and exits 0. Under systemd
(``Type=notify``) it sends READY=1 once listening, WATCHDOG=1 while its main loop runs (and, with
``--serial``, while the link is up) and STOPPING=1 on the way out.

>>> import json, socket                                         # doctest: +SKIP
>>> s = socket.socket(socket.AF_UNIX); s.connect("/run/user/1000/enigma-edge/robot.sock")
>>> s.sendall(b'{"tool": "turn", "arguments": {"direction": "left"}}\\n')
>>> json.loads(s.makefile().readline())["ok"]
True
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from pathlib import Path

from .tools import ToolError, ToolRunner

log = logging.getLogger("enigma_edge.robot")
MAX_LINE = 64 * 1024


def default_socket_path() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    return (Path(base) if base else Path("/run")) / "enigma-edge" / "robot.sock"


class RobotDaemon:
    """Serve ``devices`` (gpiozero RobotDevices, or a serial LinkRobot) on a unix socket.
    ``close()`` is safe twice."""

    def __init__(self, devices, socket_path: str | os.PathLike | None = None):
        self.devices = devices
        self.runner = ToolRunner(devices)
        self.socket_path = Path(socket_path) if socket_path else default_socket_path()
        self._sock: socket.socket | None = None
        self._stopped = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()

    # ---- lifecycle ----
    def start(self) -> "RobotDaemon":
        path = self.socket_path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()                               # stale socket from a dead daemon
            else:
                raise RuntimeError(f"another robot daemon is already listening on {path}")
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        os.chmod(path, 0o660)
        sock.listen(8)
        self._sock = sock
        threading.Thread(target=self._accept, name="robot-daemon-accept", daemon=True).start()
        log.info("robot daemon listening on %s", path)
        return self

    def serve_forever(self, tick=None, interval: float = 0.5) -> None:
        """Block until a stop is requested, calling ``tick()`` every ``interval`` s (the service
        watchdog's proof of life), then close."""
        if self._sock is None:
            self.start()
        while not self._stopped.wait(interval):
            if tick is not None:
                tick()
        self.close()

    def request_stop(self, *_sig) -> None:
        """Signal-safe: wake serve_forever, which stops everything and exits."""
        self._stopped.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stopped.set()
        try:
            self.runner.stop()
        finally:
            try:
                self.devices.close()                    # everything off, pins released
            finally:
                if self._sock is not None:
                    self._sock.close()
                    try:
                        self.socket_path.unlink()
                    except FileNotFoundError:
                        pass
                for c in list(self._conns):
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                log.info("robot daemon stopped; outputs off")

    def __enter__(self) -> "RobotDaemon":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- requests ----
    def handle(self, request) -> dict:
        """One decoded request -> one reply (never raises for bad input)."""
        rid = request.get("id") if isinstance(request, dict) else None
        reply = {"id": rid} if rid is not None else {}
        try:
            if not isinstance(request, dict):
                raise ToolError("a request is a JSON object")
            if self._closed:
                raise RuntimeError("daemon is shutting down")
            if "tool" in request:
                extra = set(request) - {"id", "tool", "arguments"}
                if extra:
                    raise ToolError(f"unknown request field(s) {sorted(extra)}")
                result = self.runner(request["tool"], request.get("arguments"))
            else:
                cmd = request.get("cmd")
                if cmd == "estop":
                    self.runner.stop()
                    result = {"stopped": True}
                elif cmd == "status":
                    result = self.devices.state()
                elif cmd == "tools":
                    result = self.runner.tools
                elif cmd == "ping":
                    result = "pong"
                else:
                    raise ToolError(f"unknown request: give 'tool' or 'cmd' (estop, status, tools, ping), "
                                    f"got {sorted(request)}")
            reply.update(ok=True, result=result)
        except (ToolError, ValueError, RuntimeError) as exc:
            reply.update(ok=False, error=str(exc))
        return reply

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        conn.sendall(self._line(line))
                if len(buf) > MAX_LINE:
                    conn.sendall(json.dumps({"ok": False, "error": f"line longer than {MAX_LINE} bytes"}).encode() + b"\n")
                    return
        except OSError:
            return
        finally:
            self._conns.discard(conn)
            conn.close()

    def _line(self, line: bytes) -> bytes:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            reply = {"ok": False, "error": f"not JSON: {exc}"}
        else:
            reply = self.handle(request)
        return json.dumps(reply).encode() + b"\n"


def load_pin_map(spec: str) -> dict:
    """``--pins``: inline JSON, a .json file, or a board profile .toml (its [gpio] table)."""
    text = spec.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"--pins: bad JSON: {exc}") from None
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--pins: {spec} is neither JSON nor a file")
    if path.suffix == ".toml":
        import tomllib

        data = tomllib.loads(path.read_text())
        if "gpio" not in data:
            raise ValueError(f"{path}: no [gpio] table")
        return data["gpio"]
    return json.loads(path.read_text())


def configure(parser) -> None:
    parser.add_argument("--pins", default=None,
                        help="pin map: inline JSON, a .json file, or a board .toml with a [gpio] table")
    parser.add_argument("--serial", default=None, metavar="PORT",
                        help="drive the Arduino running firmware/robot.c on PORT instead of GPIO pins")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--socket", default=None,
                        help=f"unix socket path (default {default_socket_path()})")
    parser.set_defaults(func=run)


def run(args) -> int:
    import sys

    from .gpio import RobotDevices

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if (args.pins is None) == (args.serial is None):
        raise ValueError("give exactly one of --pins (GPIO robot) or --serial PORT (Arduino robot)")
    if args.serial:
        from .link import Link, LinkRobot

        devices = LinkRobot(Link(args.serial, args.baud).open())
    else:
        devices = RobotDevices(load_pin_map(args.pins))
    try:
        daemon = RobotDaemon(devices, args.socket)
        daemon.install_signal_handlers()
        daemon.start()
    except BaseException:
        devices.close()
        raise
    from ..service import Heartbeat, Notifier

    notifier = Notifier()                      # systemd Type=notify; no-ops outside systemd
    healthy = (lambda: devices.link.connected) if args.serial else (lambda: True)
    heartbeat = Heartbeat(notifier, healthy).start()
    notifier.ready(f"robot daemon listening on {daemon.socket_path}")
    try:
        daemon.serve_forever(tick=heartbeat.beat)
    finally:
        notifier.stopping()
        heartbeat.stop()
        daemon.close()
        notifier.close()
    return 0
