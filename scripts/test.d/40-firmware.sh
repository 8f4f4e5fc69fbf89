#!/usr/bin/env bash
# Robot firmware (avr-gcc, -Werror) and its simavr harness: a build break fails CI here, loudly,
# before pytest runs the firmware under simavr (tests/test_robot_firmware.py).
set -euo pipefail
cd "$ENIGMA_EDGE_ROOT/firmware"
make -j2
avr-size --mcu=atmega328p -C build/robot.elf | grep -E "Program|Data"
