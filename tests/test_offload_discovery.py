"""Peer discovery: explicit config, and real zeroconf (mDNS) advertise + browse on the loopback interface."""
from __future__ import annotations

import pytest

from enigma_edge.offload.discovery import SERVICE_TYPE, advertise, browse, peers_from_config


def test_config_peers_keep_order_and_settings():
    peers = peers_from_config({"peers": [
        {"url": "http://desk.local:8080", "key": "k" * 12, "model": "qwen2.5-3b", "name": "desk"},
        {"url": "https://nas:8443/v1", "prefill": True},
    ]})
    assert [p.name for p in peers] == ["desk", "nas:8443"]
    assert peers[0].api == "/v1" and peers[0].key == "k" * 12 and peers[0].model == "qwen2.5-3b"
    assert peers[1].scheme == "https" and peers[1].api == "/v1" and peers[1].prefill
    assert peers_from_config(None) == [] and peers_from_config({}) == []
    # the boards room's form: a list of URL strings, keys by peer name
    plain = peers_from_config({"peers": ["http://10.0.0.5:8080/v1"], "keys": {"10.0.0.5:8080": "secret-123"}})
    assert [(p.url, p.key) for p in plain] == [("http://10.0.0.5:8080/v1", "secret-123")]


@pytest.mark.parametrize("cfg, msg", [
    ({"peers": 42}, "must be a list"),
    ({"peers": [42]}, "URL or a table"),
    ({"peers": [{"key": "x"}]}, "needs a 'url'"),
    ({"peers": [{"url": "http://a:1", "name": "a"}, {"url": "http://b:1", "name": "a"}]}, "duplicate"),
    ({"peers": [{"url": "file:///etc/passwd"}]}, "peer URL"),
])
def test_bad_config_is_refused(cfg, msg):
    with pytest.raises(ValueError, match=msg):
        peers_from_config(cfg)


def test_zeroconf_advertise_and_browse_on_loopback():
    pytest.importorskip("zeroconf")
    lo = ["127.0.0.1"]
    with advertise(18081, model="gemma-test", auth=False, host="127.0.0.1", name="ee-open", interfaces=lo), \
         advertise(18082, model="big", auth=True, host="127.0.0.1", name="ee-locked", interfaces=lo):
        found = browse(1.5, interfaces=lo)
        # the locked peer needs a key from local config; without one it is left out
        assert [(p.name, p.url, p.model, p.key) for p in found] == [
            ("ee-open", "http://127.0.0.1:18081/v1", "gemma-test", None)]
        found = browse(1.5, keys={"ee-locked": "secret-key-123"}, interfaces=lo)
        assert {p.name: p.key for p in found} == {"ee-locked": "secret-key-123", "ee-open": None}
    assert SERVICE_TYPE == "_enigma-edge._tcp.local."
