"""Where offload peers come from: explicit config first, optional zeroconf browse, never a scan.

Config (e.g. the ``[[offload.peers]]`` tables of the service config) is authoritative and keeps
its order. Zeroconf is opt-in on both sides: ``enigma-edge serve --advertise`` registers a
``_enigma-edge._tcp.local.`` service, and :func:`browse` listens for such services for a few
seconds (mDNS multicast on the local link, answered only by peers that chose to advertise). No
address range is ever probed.

TXT keys of an advertisement (all short ASCII; no secret is ever advertised):

====== =====================================================
``v``      record version, ``1``
``api``    API base path, ``/v1``
``auth``   ``bearer`` (a key is needed) or ``none``
``model``  the served model's name
====== =====================================================

A discovered peer that says ``auth=bearer`` gets its key from the local config (``keys`` maps a
peer name or host to a key); without one it is skipped, since it would only answer 401.

Example:

>>> from enigma_edge.offload.discovery import peers_from_config
>>> [p.name for p in peers_from_config({"peers": [{"url": "http://desk.local:8080", "name": "desk"}]})]
['desk']
"""
from __future__ import annotations

import socket
import time
from typing import Any

from .client import Peer

SERVICE_TYPE = "_enigma-edge._tcp.local."


def peers_from_config(cfg: dict | None) -> list[Peer]:
    """The ``[offload]`` config table -> Peers, in order.

    ``peers`` holds URL strings (``boards`` reads the same list) or tables
    ``{url, key, model, name, prefill}``; ``keys`` may map a peer name to its key.
    """
    if not cfg:
        return []
    peers = cfg.get("peers", [])
    if isinstance(peers, str):
        peers = [peers]
    if not isinstance(peers, list):
        raise ValueError("offload 'peers' must be a list of URLs or tables")
    keys = cfg.get("keys", {}) or {}
    out = []
    for p in peers:
        if isinstance(p, str):
            p = {"url": p}
        if not isinstance(p, dict):
            raise ValueError(f"offload peer must be a URL or a table, got {p!r}")
        peer = Peer.from_dict(dict(p))
        if peer.key is None and peer.name in keys:
            peer.key = keys[peer.name]
        out.append(peer)
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate peer names in offload config: {names}")
    return out


def _txt(props: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else (v or ""))
            for k, v in (props or {}).items()}


def browse(timeout: float = 2.0, keys: dict[str, str] | None = None, interfaces: Any = None) -> list[Peer]:
    """Peers that advertise ``_enigma-edge._tcp`` on the local link, sorted by name.

    ``interfaces`` is passed to :class:`zeroconf.Zeroconf` (e.g. ``["127.0.0.1"]`` in tests).
    """
    from zeroconf import ServiceBrowser, ServiceListener, Zeroconf

    keys = keys or {}
    names: set[str] = set()

    class _Listener(ServiceListener):
        def add_service(self, zc, type_, name):
            names.add(name)

        def update_service(self, zc, type_, name):
            names.add(name)

        def remove_service(self, zc, type_, name):
            names.discard(name)

    zc = Zeroconf(**({"interfaces": interfaces} if interfaces is not None else {}))
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, _Listener())
        time.sleep(timeout)
        browser.cancel()
        peers = []
        for name in sorted(names):
            info = zc.get_service_info(SERVICE_TYPE, name, timeout=int(timeout * 1000))
            if info is None:
                continue
            addrs = info.parsed_addresses()
            if not addrs:
                continue
            txt = _txt(info.properties)
            short = name[: -len(SERVICE_TYPE) - 1] if name.endswith("." + SERVICE_TYPE) else name
            host = addrs[0]
            key = keys.get(short) or keys.get(host)
            if txt.get("auth", "none") == "bearer" and not key:
                continue  # it would answer 401: configure a key for it to use it
            url_host = f"[{host}]" if ":" in host else host
            api = txt.get("api", "/v1")
            if not api.startswith("/"):
                continue
            peers.append(Peer(f"http://{url_host}:{info.port}{api}", key=key,
                              model=txt.get("model") or None, name=short))
        return peers
    finally:
        zc.close()


class Advertisement:
    """A registered zeroconf service; ``close()`` unregisters it (safe twice)."""

    def __init__(self, zc, info):
        self._zc, self.info = zc, info

    def close(self) -> None:
        if self._zc is not None:
            zc, self._zc = self._zc, None
            try:
                zc.unregister_service(self.info)
            finally:
                zc.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def advertise(port: int, model: str = "", auth: bool = True, host: str = "127.0.0.1",
              name: str | None = None, interfaces: Any = None) -> Advertisement:
    """Announce ``serve`` on the local link (opt-in: ``enigma-edge serve --advertise``).

    ``host`` is the bound address; for 0.0.0.0 the host's own addresses are announced.
    """
    from zeroconf import ServiceInfo, Zeroconf

    name = name or socket.gethostname().split(".")[0]
    if host in ("0.0.0.0", "::", ""):
        addrs = sorted({ai[4][0] for ai in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)})
    else:
        addrs = [host]
    info = ServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", port=port,
                       parsed_addresses=addrs,
                       properties={"v": "1", "api": "/v1", "auth": "bearer" if auth else "none",
                                   "model": model[:60]},
                       server=f"{name}.local.")
    if interfaces is None and host not in ("0.0.0.0", "::", ""):
        interfaces = [host]  # announce only on the interface the server listens on
    zc = Zeroconf(**({"interfaces": interfaces} if interfaces is not None else {}))
    try:
        zc.register_service(info)
    except BaseException:
        zc.close()
        raise
    return Advertisement(zc, info)
