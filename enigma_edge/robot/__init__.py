"""Robots: gpiozero devices (gpio), the serial link to our Arduino firmware (link, protocol),
the LLM-facing tools (tools), the daemon (daemon) and the simavr runner used by tests (sim).
Nothing is imported here: each module loads its own dependencies on use."""
