"""Run the robot firmware under simavr (``firmware/sim/harness.c``) and watch its pins.

The harness prints ``PTY /dev/pts/N`` and then one event per line, stamped with the emulated
cycle count (16 MHz): ``T <cycle> PWM D6 0.5020``, ``T <cycle> PIN D13 1``, ``T <cycle> SERVO D9
1500``, ``T <cycle> RX0`` (a frame delimiter reached the MCU), ``T <cycle> TX0``. Timing
questions (how long after the host's last frame did the motors stop?) are answered in emulated
time, so a busy test machine does not change the answer.

>>> from enigma_edge.robot.sim import SimAVR, build_firmware
>>> build = build_firmware("firmware")                          # doctest: +SKIP
>>> with SimAVR(build / "robot.elf", build / "sim_harness") as sim:   # doctest: +SKIP
...     print(sim.pty, sim.duty("D6"))
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

F_CPU = 16_000_000


@dataclass(frozen=True)
class Event:
    cycle: int
    kind: str        # PWM, PIN, SERVO, RX0, TX0, RESET, EXIT
    pin: str = ""
    value: float = 0.0

    @property
    def seconds(self) -> float:
        return self.cycle / F_CPU


def build_firmware(firmware_dir: str | os.PathLike, jobs: int = 2) -> Path:
    """``make`` in firmware_dir (firmware .elf files + harness); returns its build/ directory.
    A build failure raises RuntimeError with make's output."""
    firmware_dir = Path(firmware_dir)
    r = subprocess.run(["make", f"-j{jobs}", "-C", str(firmware_dir)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"firmware build failed in {firmware_dir}:\n{r.stdout}\n{r.stderr}")
    return firmware_dir / "build"


class SimAVR:
    """One simavr process running ``elf``; ``pty`` is its UART. Close (or the context) kills it."""

    def __init__(self, elf, harness, *, speed: float = 1.0, start_timeout: float = 10.0):
        self.events: list[Event] = []
        self._cv = threading.Condition()
        self.pty: str | None = None
        self._proc = subprocess.Popen([str(harness), "--speed", str(speed), str(elf)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        with self._cv:
            self._cv.wait_for(lambda: self.pty is not None or self._proc.poll() is not None, start_timeout)
        if self.pty is None:
            self.close()
            raise RuntimeError(f"simavr harness did not report its pty: {self._proc.stderr.read()}")

    def _read(self) -> None:
        for line in self._proc.stdout:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "PTY":
                with self._cv:
                    self.pty = parts[1]
                    self._cv.notify_all()
            elif len(parts) >= 3 and parts[0] == "T":
                ev = Event(int(parts[1]), parts[2], parts[3] if len(parts) > 3 else "",
                           float(parts[4]) if len(parts) > 4 else 0.0)
                with self._cv:
                    self.events.append(ev)
                    self._cv.notify_all()

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream:
                stream.close()

    def __enter__(self) -> "SimAVR":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- queries ----
    def snapshot(self) -> list[Event]:
        with self._cv:
            return list(self.events)

    def value(self, kind: str, pin: str) -> float | None:
        """Last reported value of a PWM / PIN / SERVO output."""
        with self._cv:
            for ev in reversed(self.events):
                if ev.kind == kind and ev.pin == pin:
                    return ev.value
        return None

    def duty(self, pin: str) -> float | None:
        return self.value("PWM", pin)

    def now_cycle(self) -> int:
        with self._cv:
            return self.events[-1].cycle if self.events else 0

    def wait_for(self, predicate, timeout: float = 10.0, *, since: int = 0) -> Event | None:
        """First event at index >= since for which predicate(event) is true (waits for it)."""
        deadline = time.monotonic() + timeout
        i = since
        with self._cv:
            while True:
                while i < len(self.events):
                    if predicate(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._proc.poll() is not None and i >= len(self.events):
                    return None
                self._cv.wait(left)

    def wait_value(self, kind: str, pin: str, value: float, timeout: float = 10.0, *, tol: float = 1e-3,
                   since: int = 0) -> Event | None:
        return self.wait_for(lambda e: e.kind == kind and e.pin == pin and abs(e.value - value) <= tol,
                             timeout, since=since)

    def mark(self) -> int:
        """Index to pass as ``since`` to look only at events from now on."""
        with self._cv:
            return len(self.events)
