"""`enigma-edge install-service`: write the systemd unit for the assistant."""
from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .service import render_unit

DEFAULT_UNIT = Path("/etc/systemd/system/enigma-edge.service")


def configure(p):
    p.add_argument("--output", "-o", type=Path, default=DEFAULT_UNIT,
                   help=f"where to write the unit (default {DEFAULT_UNIT}; '-' prints it)")
    p.add_argument("--user", default=os.environ.get("SUDO_USER") or getpass.getuser(),
                   help="account the service runs as (default: the invoking user)")
    p.add_argument("--board", default="auto", help="board profile to pin (default: detect at start)")
    p.add_argument("--watchdog-sec", type=int, default=30, help="systemd WatchdogSec (default 30)")
    p.add_argument("--no-verify", action="store_true", help="skip `systemd-analyze verify`")
    p.set_defaults(func=run)


def _exec_start(board: str) -> str:
    exe = Path(sys.prefix) / "bin" / "enigma-edge"
    if not exe.exists():
        found = shutil.which("enigma-edge")
        if not found:
            raise RuntimeError("cannot find the enigma-edge executable; run this from the installed venv")
        exe = Path(found)
    args = [str(exe), "assistant", "--service"]
    if board != "auto":
        args += ["--board", board]
    return " ".join(args)


def verify(unit_path: Path) -> str:
    """Output of `systemd-analyze verify` (empty when the unit is clean)."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        raise RuntimeError("systemd-analyze not found (install the systemd package) or pass --no-verify")
    proc = subprocess.run([tool, "verify", "--man=no", str(unit_path)], capture_output=True, text=True)
    return (proc.stdout + proc.stderr).strip()


def run(args) -> int:
    text = render_unit(_exec_start(args.board), user=args.user, board=args.board,
                       watchdog_sec=args.watchdog_sec)
    if str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    out: Path = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    if not args.no_verify:
        problems = verify(out)
        if problems:
            print(problems, file=sys.stderr)
            print("systemd-analyze verify reported the problems above", file=sys.stderr)
            return 1
        print("systemd-analyze verify: clean")
    if out == DEFAULT_UNIT:
        print("next: sudo systemctl daemon-reload && sudo systemctl enable --now enigma-edge")
    return 0
