"""Service primitives: sd_notify over a real AF_UNIX datagram socket, watchdog cadence, atomic
state under kill -9, config layering, supervised stages, and the systemd unit."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from enigma_edge import service
from enigma_edge.service import Notifier, StateStore, Stage, load_config


def _notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.settimeout(10)
    return sock, path


def _recv(sock):
    """One datagram and the pid of its sender (from SCM_CREDENTIALS)."""
    data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, typ, payload in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid, _uid, _gid = struct.unpack("iII", payload[:12])
    return data.decode(), pid


DAEMON = textwrap.dedent("""
    import sys, time
    from enigma_edge.service import Notifier, Heartbeat
    n = Notifier()
    hb = Heartbeat(n).start()
    n.ready("serving")
    t_end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < t_end:        # healthy main loop
        hb.beat(); time.sleep(0.01)
    print("HANG", flush=True)
    time.sleep(float(sys.argv[2]))         # main loop hung: no beats
    hb.stop(); n.stopping()
""")


def test_ready_watchdog_cadence_and_stopping_over_real_socket(tmp_path):
    sock, path = _notify_socket(tmp_path)
    env = dict(os.environ, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="100000")  # ping every 50 ms
    proc = subprocess.Popen([sys.executable, "-c", DAEMON, "1.0", "1.2"], env=env,
                            stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    msgs = []
    while True:
        text, pid = _recv(sock)
        msgs.append((time.monotonic(), text))
        assert pid == proc.pid, "notification must come from the service's own pid"
        if "STOPPING=1" in text:
            break
    proc.wait(10)
    sock.close()
    texts = [t for _, t in msgs]
    assert texts[0].startswith("READY=1") and "STATUS=serving" in texts[0]
    pings = [ts for ts, t in msgs if t == "WATCHDOG=1"]
    # ~1.0 s of healthy loop at a 50 ms cadence: many pings, none of them before READY
    assert len(pings) >= 8
    # once the loop hangs (1.2 s) the pings stop: nothing in the last 0.8 s before STOPPING
    stop_ts = msgs[-1][0]
    assert all(ts < stop_ts - 0.8 for ts in pings)


def test_notifier_is_silent_without_systemd():
    n = Notifier(env={})
    assert n.notify("READY=1") is False
    assert n.watchdog_interval is None


def test_watchdog_ignored_for_another_pid():
    n = Notifier(env={"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval is None


def test_abstract_notify_socket(tmp_path):
    name = f"enigma-edge-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    n = Notifier(env={"NOTIFY_SOCKET": "@" + name})
    assert n.ready()
    assert sock.recv(100) == b"READY=1"
    n.close(); n.close()
    sock.close()


WRITER = textwrap.dedent("""
    import sys
    from enigma_edge.service import StateStore
    store = StateStore(sys.argv[1])
    i = 0
    while True:
        i += 1
        store.save({"turn": i, "history": [["q%d" % j, "a" * 200] for j in range(i % 50)]})
        if i == 3: print("GO", flush=True)
""")


def test_kill_9_during_state_writes_never_tears_the_file(tmp_path):
    path = tmp_path / "memory.json"
    rng = random.Random(1234)
    last = 0
    for _ in range(15):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "GO"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        # the main file itself (not only the .bak fallback) must always be a complete document
        raw = json.loads(path.read_bytes())
        data = StateStore(path).load()
        assert data == raw["data"]
        assert data["turn"] >= 3 and len(data["history"]) == data["turn"] % 50
        last = data["turn"]
    assert last > 0


def test_damaged_state_falls_back_to_backup(tmp_path, caplog):
    store = StateStore(tmp_path / "s.json")
    store.save({"v": 1})
    store.save({"v": 2})
    assert store.load() == {"v": 2}
    (tmp_path / "s.json").write_bytes(b'{"format": 1, "crc32": 0, "data": {"v": 3')  # torn by hand
    assert store.load() == {"v": 1}
    assert "using" in caplog.text


def test_checksum_and_validator_reject_bad_state(tmp_path):
    def validate(d):
        if not isinstance(d.get("turns"), list):
            raise ValueError("turns must be a list")
    store = StateStore(tmp_path / "s.json", validate=validate)
    assert store.load(default={"turns": []}) == {"turns": []}
    store.save({"turns": "oops"})
    assert store.load(default="empty") == "empty"
    doc = json.loads((tmp_path / "s.json").read_text())
    doc["data"] = {"turns": []}  # edited without fixing the checksum
    (tmp_path / "s.json").write_text(json.dumps(doc))
    assert store.load(default="empty") == "empty"


def test_atomic_write_leaves_no_temp_files(tmp_path):
    for i in range(5):
        service.atomic_write(tmp_path / "f", str(i).encode())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "f.bak"]
    assert (tmp_path / "f").read_text() == "4" and (tmp_path / "f.bak").read_text() == "3"


def test_config_layers_and_errors(tmp_path):
    defaults = {"llm": {"threads": 2, "temp": 0.7, "model": ""}, "voice": {"enabled": True}}
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('[llm]\nthreads = 3\ntemp = 1\n')
    cfg = load_config(cfg_file, defaults, env={"ENIGMA_EDGE_VOICE_ENABLED": "off"})
    assert cfg == {"llm": {"threads": 3, "temp": 1, "model": ""}, "voice": {"enabled": False}}
    assert defaults["llm"]["threads"] == 2  # defaults untouched
    cfg_file.write_text('[llm]\nthraeds = 3\n')
    with pytest.raises(ValueError, match="unknown key 'llm.thraeds'"):
        load_config(cfg_file, defaults, env={})
    cfg_file.write_text('[llm]\nthreads = "many"\n')
    with pytest.raises(ValueError, match="llm.threads must be int"):
        load_config(cfg_file, defaults, env={})
    with pytest.raises(ValueError, match="ENIGMA_EDGE_LLM_THREADS"):
        load_config(None, defaults, env={"ENIGMA_EDGE_LLM_THREADS": "x"})
    cfg_file.write_text('[llm\n')
    with pytest.raises(ValueError, match="c.toml"):
        load_config(cfg_file, defaults, env={})


def test_state_and_config_dirs_follow_systemd_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/a:{tmp_path}/b")
    assert service.state_dir() == tmp_path / "a"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x"))
    assert service.state_dir() == tmp_path / "x" / "enigma-edge"
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "etc"))
    assert service.config_dir() == tmp_path / "etc"


def test_crashing_stage_restarts_with_backoff_and_is_reported():
    runs = []
    errors = []
    done = threading.Event()

    def flaky(stop):
        runs.append(time.monotonic())
        if len(runs) < 4:
            raise OSError("audio device gone")
        done.set()
        stop.wait()

    st = Stage("audio", flaky, backoff=(0.05, 1.0), on_error=lambda n, e: errors.append((n, str(e)))).start()
    assert done.wait(10)
    assert st.failures == 3 and st.healthy
    assert errors == [("audio", "audio device gone")] * 3
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert gaps[1] > gaps[0] * 1.5  # exponential backoff
    st.stop()
    assert not st._thread


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_install_service_writes_a_unit_that_verifies(cli, tmp_path):
    out = tmp_path / "enigma-edge.service"
    proc = cli("install-service", "-o", str(out), "--watchdog-sec", "20")
    assert proc.returncode == 0, proc.stderr
    assert "verify: clean" in proc.stdout
    unit = out.read_text()
    for line in ("Type=notify", "WatchdogSec=20s", "Restart=on-failure", "StartLimitBurst=",
                 "StateDirectory=enigma-edge", "ConfigurationDirectory=enigma-edge",
                 "SupplementaryGroups=gpio audio dialout", "ProtectSystem=strict", "ProtectHome=",
                 "PrivateTmp=yes", "NoNewPrivileges=yes"):
        assert line in unit
    exec_start = next(l for l in unit.splitlines() if l.startswith("ExecStart="))
    assert os.path.exists(exec_start.split("=", 1)[1].split()[0])


def test_unit_rejects_tiny_watchdog():
    with pytest.raises(ValueError):
        service.render_unit("/bin/true", user="root", watchdog_sec=1)
