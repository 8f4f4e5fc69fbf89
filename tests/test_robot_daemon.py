"""The robot daemon over a real unix socket: in-process on gpiozero's MockFactory (pin read-back),
and as `enigma-edge robot` in a subprocess (mock pin factory by gpiozero's env setting) for SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("gpiozero")
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from enigma_edge.robot.daemon import RobotDaemon, default_socket_path
from enigma_edge.robot.gpio import RobotDevices

PINS = {"led": 17, "servo": 18, "gripper": 16, "motor_left": [5, 6], "motor_right": [13, 19],
        "outputs": {"lamp": 22}}
MOTOR_PINS = (5, 6, 13, 19)


@pytest.fixture
def factory():
    f = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = f
    yield f
    f.reset()
    Device.pin_factory = None


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")

    def raw(self, line: bytes) -> dict:
        self.sock.sendall(line + b"\n")
        return json.loads(self.file.readline())

    def __call__(self, **request) -> dict:
        return self.raw(json.dumps(request).encode())

    def close(self):
        self.file.close()
        self.sock.close()


def test_socket_commands_move_mock_motor_pins(factory, tmp_path):
    path = tmp_path / "robot.sock"
    with RobotDaemon(RobotDevices(PINS), path) as daemon:
        assert oct(path.stat().st_mode & 0o777) == "0o660"
        c = Client(path)
        r = c(id=7, tool="move", arguments={"direction": "forward", "speed": 0.6, "duration": 5})
        assert r["ok"] and r["id"] == 7 and r["result"]["arguments"]["duration"] == 5.0
        assert [factory.pin(n).state for n in MOTOR_PINS] == pytest.approx([0.6, 0, 0.6, 0])
        assert c(cmd="status")["result"]["motors"] == pytest.approx([0.6, 0.6])
        r = c(tool="move", arguments={"direction": "forward", "speed": float("nan")})
        assert not r["ok"] and "finite" in r["error"]
        assert not c(tool="move", arguments={"direction": "forward", "turbo": True})["ok"]
        assert not c(tool="launch")["ok"]
        assert "not JSON" in c.raw(b"{oops")["error"]
        assert [factory.pin(n).state for n in MOTOR_PINS] == pytest.approx([0.6, 0, 0.6, 0])  # unchanged
        assert c(cmd="estop")["ok"]
        assert [factory.pin(n).state for n in MOTOR_PINS] == [0, 0, 0, 0]
        assert c(tool="set_pin", arguments={"name": "lamp", "on": True})["ok"]
        assert factory.pin(22).state == 1
        assert c(tool="gripper", arguments={"action": "close"})["ok"]
        assert factory.pin(16).state == pytest.approx(0.002 * 50)
        assert c(tool="turn", arguments={"direction": "right", "speed": 1, "duration": 0.2})["ok"]
        assert [factory.pin(n).state for n in MOTOR_PINS] == [1, 0, 0, 1]
        deadline = time.monotonic() + 5                     # the timed turn stops by itself
        while factory.pin(5).state and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [factory.pin(n).state for n in MOTOR_PINS] == [0, 0, 0, 0]
        assert [t["function"]["name"] for t in c(cmd="tools")["result"]][-1] == "set_pin"
        c.close()
        assert daemon.socket_path == path


def test_sigterm_stops_everything_in_process(factory, tmp_path):
    path = tmp_path / "robot.sock"
    daemon = RobotDaemon(RobotDevices(PINS), path).start()
    old = signal.getsignal(signal.SIGTERM)
    try:
        daemon.install_signal_handlers()
        c = Client(path)
        assert c(tool="move", arguments={"direction": "backward", "speed": 0.8, "duration": 10})["ok"]
        assert c(tool="set_pin", arguments={"name": "led", "on": True})["ok"]
        assert [factory.pin(n).state for n in MOTOR_PINS] == pytest.approx([0, 0.8, 0, 0.8])
        os.kill(os.getpid(), signal.SIGTERM)               # handler runs in this (main) thread
        daemon.serve_forever()                             # returns at once: stop was requested
        assert [factory.pin(n).state for n in MOTOR_PINS] == [0, 0, 0, 0]
        assert factory.pin(17).state == 0 and not path.exists()
        daemon.close()                                     # safe twice
        c.close()
    finally:
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_cli_daemon_subprocess_sigterm(tmp_path):
    path = tmp_path / "robot.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)   # stands in for systemd's socket
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(20)
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock", GPIOZERO_MOCK_PIN_CLASS="mockpwmpin",
               NOTIFY_SOCKET=str(tmp_path / "notify"))
    code = "import sys; from enigma_edge.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "robot", "--pins", json.dumps(PINS),
                             "--socket", str(path)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.exists(), proc.stderr.read() if proc.poll() is not None else "no socket"
        assert b"READY=1" in notify.recv(4096)
        c = Client(path)
        assert c(tool="move", arguments={"direction": "forward", "speed": 0.5, "duration": 10})["ok"]
        st = c(cmd="status")["result"]
        assert st["motors"] == [0.5, 0.5]                 # read back from the mock pins by gpiozero
        c.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert b"STOPPING=1" in notify.recv(4096)
        assert "outputs off" in proc.stderr.read()
        assert not path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        notify.close()


def test_bad_pins_argument_is_a_clear_cli_error(cli, tmp_path):
    r = cli("robot", "--pins", '{"laser": 4}', "--socket", str(tmp_path / "s.sock"))
    assert r.returncode == 1 and "unknown gpio keys" in r.stderr
    r = cli("robot", "--socket", str(tmp_path / "s.sock"))
    assert r.returncode == 1 and "exactly one of --pins" in r.stderr


def test_default_socket_path(monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert str(default_socket_path()) == "/run/user/1000/enigma-edge/robot.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert str(default_socket_path()) == "/run/enigma-edge/robot.sock"


def test_daemon_drives_the_arduino_firmware_over_serial(tmp_path):
    from enigma_edge.robot.link import Link, LinkRobot
    from enigma_edge.robot.sim import SimAVR, build_firmware

    build = build_firmware(os.path.join(os.path.dirname(__file__), "..", "firmware"))
    path = tmp_path / "robot.sock"
    with SimAVR(build / "robot.elf", build / "sim_harness") as sim:
        robot = LinkRobot(Link(sim.pty, ack_timeout=0.5, retries=6).open(), outputs={"led": 13, "horn": 8})
        with RobotDaemon(robot, path):
            c = Client(path)
            mark = sim.mark()
            assert c(tool="move", arguments={"direction": "forward", "speed": 0.5, "duration": 10})["ok"]
            assert sim.wait_value("PWM", "D6", 0.5, since=mark) and sim.wait_value("PWM", "D5", 0.5, since=mark)
            assert c(tool="set_pin", arguments={"name": "horn", "on": True})["ok"]
            assert sim.wait_value("PIN", "D8", 1, since=mark)
            assert c(tool="gripper", arguments={"action": "close"})["ok"]
            assert sim.wait_value("SERVO", "D9", 2000, since=mark)
            assert not c(tool="set_pin", arguments={"name": "motor", "on": True})["ok"]
            assert c(cmd="estop")["ok"]
            assert sim.wait_value("PWM", "D6", 0, since=mark)
            assert c(cmd="status")["result"]["armed"] is False
            c.close()
        assert not robot.link.connected                     # daemon close -> link closed
