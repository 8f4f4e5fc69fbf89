"""Board profiles, detection on recorded procfs/sysfs trees, the memory governor and the thermal
watcher."""
from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from enigma_edge import boards, governor

FIXTURES = Path(__file__).parent / "fixtures" / "boards"
DOCS = Path(__file__).parent.parent / "docs" / "boards.md"
MiB = 1 << 20


# ------------------------------------------------------------------------------------------------
# profiles


@pytest.mark.parametrize("name", ["pi_zero", "pi_zero2", "pi_3", "pi_4", "pi_5", "desktop"])
def test_every_profile_loads_and_validates(name):
    p = boards.load_profile(name)
    assert p.name == name and Path(p.path).name == f"{name}.toml"
    if p.cpu.cores:
        assert p.llm.threads + p.llm.audio_reserved_cores <= p.cpu.cores
    assert p.thermal.restore_c < p.thermal.throttle_c
    assert p.llm.min_ctx <= p.llm.n_ctx
    pins = [x for v in p.gpio.values() for x in (v if isinstance(v, list) else [v])]
    assert len(pins) == len(set(pins)) and all(0 <= x <= 27 for x in pins)
    # the robot engineer consumes these names
    assert {"led", "button", "servo", "motor_left", "motor_right", "distance"} <= set(p.gpio)


def test_profiles_reflect_the_boards():
    ps = boards.load_all()
    assert set(ps) == {"pi_zero", "pi_zero2", "pi_3", "pi_4", "pi_5", "desktop"}
    assert ps["pi_zero"].cpu.isa == "armv6" and ps["pi_zero"].cpu.cores == 1
    assert ps["pi_zero2"].memory.ram_tiers_mb == [512]
    assert "asimddp" in ps["pi_5"].cpu.features and "asimddp" not in ps["pi_4"].cpu.features
    assert ps["pi_5"].memory.ram_tiers_mb[-1] == 16384
    assert ps["pi_5"].robot.pin_factory == "lgpio"
    # bigger boards may load bigger models and longer contexts
    order = ["pi_zero2", "pi_3", "pi_4", "pi_5"]
    assert [ps[n].llm.max_local_model_mb for n in order] == sorted(ps[n].llm.max_local_model_mb for n in order)
    assert [ps[n].llm.n_ctx for n in order] == sorted(ps[n].llm.n_ctx for n in order)
    assert ps["desktop"].llm_threads(8) == 7 and ps["pi_4"].llm_threads(8) == 3


def test_docs_describe_every_schema_key():
    text = DOCS.read_text()

    def keys(cls, prefix=""):
        for f in dataclasses.fields(cls):
            if f.name == "path":
                continue
            if dataclasses.is_dataclass(f.type) or f.name in ("detect", "cpu", "memory", "llm", "stt",
                                                               "thermal", "robot", "serial", "audio"):
                sub = {"detect": boards.Detect, "cpu": boards.Cpu, "memory": boards.Memory, "llm": boards.Llm,
                       "stt": boards.Stt, "thermal": boards.Thermal, "robot": boards.Robot,
                       "serial": boards.Serial, "audio": boards.Audio}[f.name]
                yield from keys(sub, f"{f.name}.")
            else:
                yield prefix + f.name

    missing = [k for k in keys(boards.Profile) if f"`{k}`" not in text]
    assert not missing, f"docs/boards.md does not describe {missing}"


@pytest.mark.parametrize("name", ["pi_zero", "pi_zero2", "pi_3", "pi_4", "pi_5", "desktop"])
def test_gpio_maps_are_what_the_robot_room_accepts(name):
    gpio = pytest.importorskip("enigma_edge.robot.gpio")
    parsed = gpio.parse_pin_map(boards.load_profile(name).gpio)
    assert parsed["motor_left"] == {"forward": 5, "backward": 6}
    assert parsed["distance"] == {"trigger": 23, "echo": 24}


def test_gpio_tables_and_pin_names(tmp_path):
    data = _profile_data()
    data["gpio"]["motor_left"] = {"forward": 5, "backward": 6, "enable": 12}
    data["gpio"]["outputs"] = {"lamp": "GPIO22", "fan": "BOARD11"}
    p = boards.load_profile(_write(tmp_path, data))
    assert p.gpio["motor_left"] == {"forward": 5, "backward": 6, "enable": 12}
    assert p.gpio["outputs"] == {"lamp": "GPIO22", "fan": "BOARD11"}
    gpio = pytest.importorskip("enigma_edge.robot.gpio")
    assert gpio.parse_pin_map(p.gpio)["outputs"] == {"lamp": "GPIO22", "fan": "BOARD11"}


def _profile_data(name="pi_4"):
    with (Path(boards.profiles_dir()) / f"{name}.toml").open("rb") as f:
        return tomllib.load(f)


def _write(tmp_path, data, name="pi_4"):
    lines = []

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"
        return repr(v)

    for k, v in data.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {val(v)}")
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {val(vv)}" for kk, vv in v.items()]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rewritten_profile_round_trips(tmp_path):
    assert boards.load_profile(_write(tmp_path, _profile_data())) == boards.load_profile("pi_4")


@pytest.mark.parametrize("edit, error", [
    (lambda d: d["llm"].update(nctx=512), r"unknown key 'llm\.nctx'.*did you mean 'n_ctx'"),
    (lambda d: d.update(colour="red"), r"unknown key 'colour'"),
    (lambda d: d["llm"].update(threads="3"), r"llm\.threads: expected integer, got string '3'"),
    (lambda d: d["llm"].update(threads=True), r"llm\.threads: expected integer, got boolean True"),
    (lambda d: d["audio"].update(device=0), r"audio\.device: expected string, got integer 0"),
    (lambda d: d["memory"].update(ram_tiers_mb=4096), r"memory\.ram_tiers_mb: expected a list"),
    (lambda d: d["llm"].update(n_ctx=64), r"llm\.n_ctx: 64 is out of range 128\.\.1048576"),
    (lambda d: d["thermal"].update(throttle_c=150.0), r"thermal\.throttle_c: 150\.0 is out of range"),
    (lambda d: d["gpio"].update(led=40), r"gpio\.led: 40 is out of range 0\.\.27"),
    (lambda d: d["llm"].update(offload="sometimes"), r"llm\.offload: 'sometimes' is not one of never, when_too_big, always"),
    (lambda d: d["stt"].update(backend="whisper"), r"stt\.backend: 'whisper' is not one of"),
    (lambda d: d["llm"].update(kv_type="q5_1"), r"llm\.kv_type: 'q5_1' is not one of"),
    (lambda d: d["thermal"].update(restore_c=80.0), r"thermal\.restore_c \(80\.0\) must be below thermal\.throttle_c"),
    (lambda d: d["gpio"].update(outputs={"lamp": 17}), r"gpio\.outputs\.lamp: GPIO17 is already used by gpio\.led"),
    (lambda d: d["gpio"].update(lamp="GPIO5"), r"gpio\.lamp: GPIO5 is already used by gpio\.motor_left\[0\]"),
    (lambda d: d["gpio"].update(lamp="pin5"), r"gpio\.lamp: 'pin5' is not a pin"),
    (lambda d: d["gpio"].update(lamp=[1, 2, 3, 4, 7]), r"gpio\.lamp: a pin list has 1 to 4 pins, got 5"),
    (lambda d: d["llm"].update(threads=4), r"llm\.threads \(4\) \+ llm\.audio_reserved_cores \(1\) exceed cpu\.cores \(4\)"),
    (lambda d: d["llm"].pop("threads"), r"missing key 'llm\.threads'"),
    (lambda d: d.pop("serial"), r"missing key 'serial'"),
    (lambda d: d.update(name="pi_9"), r"name: 'pi_9' must match the file name 'pi_4'"),
])
def test_bad_profiles_give_clear_errors(tmp_path, edit, error):
    data = _profile_data()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(boards.BoardProfileError, match=error) as exc:
        boards.load_profile(path)
    assert str(path) in str(exc.value)


def test_broken_toml_and_unknown_names(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("name = \n")
    with pytest.raises(boards.BoardProfileError, match="not valid TOML"):
        boards.load_profile(bad)
    with pytest.raises(boards.BoardProfileError, match="unknown board 'pi_9'; known boards: desktop, pi_3"):
        boards.load_profile("pi_9")
    with pytest.raises(boards.BoardProfileError, match="not found"):
        boards.load_profile(tmp_path / "absent.toml")


# ------------------------------------------------------------------------------------------------
# detection

EXPECTED = {
    # board: (arch, cpus, ram_mb, model prefix)
    "pi_zero": ("armv6l", 1, 512, "Raspberry Pi Zero W"),
    "pi_zero2": ("aarch64", 4, 512, "Raspberry Pi Zero 2 W"),
    "pi_3": ("armv7l", 4, 1024, "Raspberry Pi 3 Model B"),
    "pi_4": ("aarch64", 4, 4096, "Raspberry Pi 4 Model B"),
    "pi_5": ("aarch64", 4, 8192, "Raspberry Pi 5 Model B"),
}


@pytest.mark.parametrize("board", sorted(EXPECTED) + ["desktop"])
def test_detection_picks_the_board_from_its_recorded_tree(board):
    d = boards.detect(FIXTURES / board)
    assert d.profile == board, d.reason
    assert d.mem_available and d.mem_total and d.mem_available < d.mem_total
    if board == "desktop":
        assert d.arch == "x86_64" and d.revision is None and "avx2" in d.features
        return
    arch, cpus, ram, model = EXPECTED[board]
    assert (d.arch, d.cpus, d.ram_mb) == (arch, cpus, ram)
    assert d.model.startswith(model)
    assert d.reason.startswith("revision code")


@pytest.mark.parametrize("board", sorted(EXPECTED))
def test_hwcap_from_auxv_matches_the_features_line(board):
    root = FIXTURES / board
    info = boards.read_cpuinfo(root)
    hw = boards.read_hwcap(root, boards.cpu_arch(info))
    assert hw["features"] == info["Features"].split()


def test_32bit_os_on_a_64bit_kernel(tmp_path):
    # 32-bit Raspberry Pi OS on a Pi 4 runs an arm64 kernel: cpuinfo says "(v8l)" with 32-bit
    # feature names, and the process's auxv has 32-bit words
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "pi_4", root)
    cpuinfo = root / "proc" / "cpuinfo"
    compat = ("model name\t: ARMv8 Processor rev 3 (v8l)\nBogoMIPS\t: 108.00\nFeatures\t: half thumb fastmult vfp "
              "edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32 \n")
    cpuinfo.write_text(cpuinfo.read_text().replace("BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n", compat))
    shutil.copy(FIXTURES / "pi_3" / "proc/self/auxv", root / "proc/self/auxv")
    d = boards.detect(root)
    assert (d.profile, d.arch, d.features_source) == ("pi_4", "armv8l", "auxv HWCAP")
    assert d.features == boards.read_cpuinfo(root)["Features"].split() and "neon" in d.features


def test_detection_falls_back_to_the_device_tree_model(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "pi_4", root)
    cpuinfo = root / "proc" / "cpuinfo"
    cpuinfo.write_text(re.sub(r"Revision\t: \w+\n", "", cpuinfo.read_text()))
    d = boards.detect(root)
    assert d.profile == "pi_4" and d.reason == "device-tree model 'Raspberry Pi 4 Model B Rev 1.4'"
    (root / "proc/device-tree/model").write_bytes(b"Raspberry Pi Zero 2 W Rev 1.0\0")
    assert boards.detect(root).profile == "pi_zero2"  # longest prefix, not "Raspberry Pi Zero"
    (root / "proc/device-tree/model").write_bytes(b"Radxa ROCK 5B\0")
    d = boards.detect(root)
    assert d.profile is None and "no profile matches" in d.reason


@pytest.mark.parametrize("code, model, proc, mb", [
    (0x9000C1, "Zero W", "BCM2835", 512), (0x902120, "Zero 2 W", "BCM2837", 512),
    (0xA02082, "3B", "BCM2837", 1024), (0xA22082, "3B", "BCM2837", 1024), (0xA020D3, "3B+", "BCM2837", 1024),
    (0xA03111, "4B", "BCM2711", 1024), (0xC03114, "4B", "BCM2711", 4096), (0xD03114, "4B", "BCM2711", 8192),
    (0xC04170, "5", "BCM2712", 4096), (0xD04170, "5", "BCM2712", 8192), (0xE04171, "5", "BCM2712", 16384),
    (0x0010, "B+", "BCM2835", 512), (0x1000002, "B", "BCM2835", 256),
])
def test_revision_codes_decode(code, model, proc, mb):
    r = boards.decode_revision(code)
    assert (r["model"], r["processor"], r["memory_mb"]) == (model, proc, mb)


def test_revision_warranty_bit_and_unknown_code():
    assert boards.decode_revision(0x2A02082)["warranty_void"] is True
    assert boards.decode_revision(0x0001) is None


def test_override_order(tmp_path):
    cfg = tmp_path / "config.toml"
    root = FIXTURES / "pi_4"
    assert boards.select_board(None, env={}, root=root, config=cfg).source == "detected"
    cfg.write_text('board = "pi_3"\n')
    s = boards.select_board(None, env={}, root=root, config=cfg)
    assert (s.profile.name, s.source) == ("pi_3", f"config file {cfg}")
    s = boards.select_board(None, env={"ENIGMA_EDGE_BOARD": "pi_zero2"}, root=root, config=cfg)
    assert (s.profile.name, s.source) == ("pi_zero2", "ENIGMA_EDGE_BOARD")
    s = boards.select_board("pi_5", env={"ENIGMA_EDGE_BOARD": "pi_zero2"}, root=root, config=cfg)
    assert (s.profile.name, s.source, s.detected.profile) == ("pi_5", "--board", "pi_4")
    s = boards.select_board("auto", env={"ENIGMA_EDGE_BOARD": "auto"}, root=root, config=cfg)
    assert s.profile.name == "pi_3"
    with pytest.raises(boards.BoardProfileError, match="ENIGMA_EDGE_BOARD: unknown board 'pi_6'"):
        boards.select_board(None, env={"ENIGMA_EDGE_BOARD": "pi_6"}, root=root, config=cfg)
    # config path from the environment, as the service sets it
    assert boards.config_path({"CONFIGURATION_DIRECTORY": str(tmp_path)}) == cfg


def test_undetectable_board_needs_a_choice(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nCPU architecture: 8\nFeatures\t: fp asimd\n")
    (tmp_path / "proc/meminfo").write_text("MemTotal: 4000000 kB\nMemAvailable: 3000000 kB\n")
    with pytest.raises(boards.BoardDetectionError, match="cannot detect the board.*--board"):
        boards.select_board(None, env={}, root=tmp_path, config=tmp_path / "none.toml")
    assert boards.select_board("pi_4", env={}, root=tmp_path, config=tmp_path / "none.toml").profile.name == "pi_4"


# ------------------------------------------------------------------------------------------------
# governor: memory

GEMMA_270M = governor.ModelFacts(  # the default model's header (FACTS.md; checked in test_model_facts_*)
    name="gemma-3-270m-q4_k_m", arch="gemma3", weights_bytes=246_587_904, n_layer=18, n_ctx_train=32768,
    n_embd=640, n_head=4, n_kv_heads=1, head_dim_k=256, head_dim_v=256, n_ff=2048, n_vocab=262144)
# published shapes of bigger models (their GGUF headers); weights = Q4_K_M file sizes
QWEN25_05B = governor.ModelFacts(
    name="qwen2.5-0.5b-instruct-q4_k_m", arch="qwen2", weights_bytes=397_807_936, n_layer=24,
    n_ctx_train=32768, n_embd=896, n_head=14, n_kv_heads=2, head_dim_k=64, head_dim_v=64, n_ff=4864,
    n_vocab=151936)
LLAMA32_3B = governor.ModelFacts(
    name="llama-3.2-3b-instruct-q4_k_m", arch="llama", weights_bytes=2_019_377_696, n_layer=28,
    n_ctx_train=131072, n_embd=3072, n_head=24, n_kv_heads=8, head_dim_k=128, head_dim_v=128, n_ff=8192,
    n_vocab=128256)
LLAMA31_8B = governor.ModelFacts(
    name="llama-3.1-8b-instruct-q4_k_m", arch="llama", weights_bytes=4_920_733_696, n_layer=32,
    n_ctx_train=131072, n_embd=4096, n_head=32, n_kv_heads=8, head_dim_k=128, head_dim_v=128, n_ff=14336,
    n_vocab=128256)


def _avail(board):
    return boards.read_meminfo(FIXTURES / board)["MemAvailable"]


def test_kv_formula():
    # 2 * n_layer * n_ctx * n_kv_heads * head_dim * bytes: 2*18*1024*1*256*2
    assert governor.kv_bytes(GEMMA_270M, 1024, "f16") == 2 * 18 * 1024 * 256 * 2
    assert governor.kv_bytes(LLAMA31_8B, 8192, "f16") == 1 << 30
    assert governor.kv_bytes(GEMMA_270M, 1024, "q8_0") == 2 * 18 * 1024 * 256 * 34 // 32


def test_governor_512mb_board():
    p, avail = boards.load_profile("pi_zero2"), _avail("pi_zero2")
    plan = governor.plan_model(GEMMA_270M, p, avail)
    assert (plan.decision, plan.n_ctx, plan.kv_type) == ("load", 1024, "q8_0")
    assert plan.need <= plan.budget == avail - 32 * MiB
    assert "MemAvailable 323.8 MB" in plan.message and "weights 235.2 MB" in plan.message
    # asking for the model's whole context does not fit: the governor shortens it
    plan = governor.plan_model(GEMMA_270M, p, avail, n_ctx=32768)
    assert plan.decision == "shorter_ctx" and plan.kv_type == "q8_0" and 1024 <= plan.n_ctx < 32768
    assert plan.need <= plan.budget < plan.weights + governor.kv_bytes(GEMMA_270M, plan.n_ctx * 2, "q8_0") \
        + governor.scratch_bytes(GEMMA_270M, plan.n_ctx * 2)
    # a 0.5B model is beyond the Zero 2 W's local limit: offload when a peer exists, else refuse
    plan = governor.plan_model(QWEN25_05B, p, avail, peers=["http://desk.local:8080"])
    assert (plan.decision, plan.peer) == ("offload", "http://desk.local:8080")
    assert "max_local_model_mb = 300" in plan.message
    plan = governor.plan_model(QWEN25_05B, p, avail)
    assert plan.decision == "refuse" and "no peer is configured" in plan.message
    # pi_zero offloads always
    plan = governor.plan_model(GEMMA_270M, boards.load_profile("pi_zero"), _avail("pi_zero"), peers=["http://d"])
    assert plan.decision == "offload" and "offloads always" in plan.message


def test_governor_1gb_board():
    p, avail = boards.load_profile("pi_3"), _avail("pi_3")
    plan = governor.plan_model(GEMMA_270M, p, avail)
    assert (plan.decision, plan.n_ctx, plan.kv_type) == ("load", 2048, "f16")
    # the full 32k context: f16 KV (576 MB) does not fit, q8_0 (306 MB) does
    plan = governor.plan_model(GEMMA_270M, p, avail, n_ctx=32768)
    assert (plan.decision, plan.n_ctx, plan.kv_type) == ("smaller_kv", 32768, "q8_0")
    assert "32768 tokens with f16 KV do not fit (576.0 MB of KV); q8_0 KV does" in plan.message
    # with less memory free the context shrinks too
    plan = governor.plan_model(GEMMA_270M, p, 400 * MiB, n_ctx=32768)
    assert plan.decision == "shorter_ctx" and plan.kv_type == "q8_0" and plan.n_ctx < 32768
    plan = governor.plan_model(LLAMA32_3B, p, avail, peers=["http://desk:8080"])
    assert plan.decision == "offload"


def test_governor_4gb_board():
    p, avail = boards.load_profile("pi_4"), _avail("pi_4")
    plan = governor.plan_model(LLAMA32_3B, p, avail)
    assert (plan.decision, plan.n_ctx, plan.kv_type) == ("load", 4096, "f16")
    plan = governor.plan_model(LLAMA31_8B, p, avail)
    assert plan.decision == "refuse" and "exceed pi_4's local limit" in plan.message
    # a raised local limit still cannot beat physics: 4.6 GB of weights on a 3.3 GB budget
    big = dataclasses.replace(p, llm=dataclasses.replace(p.llm, max_local_model_mb=8192))
    plan = governor.plan_model(LLAMA31_8B, big, avail, peers=["http://desk:8080"])
    assert plan.decision == "offload" and "does not fit even at 512 tokens" in plan.message
    plan = governor.plan_model(LLAMA31_8B, big, avail, offload="never")
    assert plan.decision == "refuse" and "offload policy is 'never'" in plan.message


def test_governor_8gb_board():
    p, avail = boards.load_profile("pi_5"), _avail("pi_5")
    plan = governor.plan_model(LLAMA31_8B, p, avail)
    assert (plan.decision, plan.n_ctx, plan.kv_type) == ("load", 8192, "f16")
    assert plan.kv == 1 << 30
    plan = governor.plan_model(LLAMA31_8B, p, avail, n_ctx=131072)
    assert plan.decision == "shorter_ctx" and plan.kv_type == "q8_0"
    assert plan.n_ctx == 32768  # 65536 x q8_0 would need 4.25 GB of KV next to 4.6 GB of weights
    with pytest.raises(ValueError, match="unknown KV cache type 'q3'"):
        governor.plan_model(LLAMA31_8B, p, avail, kv_type="q3")


def _tiny_gguf(path: Path, n_layer=3, n_embd=64, n_head=4, n_kv=2, ctx=512):
    gguf = pytest.importorskip("gguf")
    import numpy as np
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(4 * n_embd)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"t{i}".encode() for i in range(100)])
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.standard_normal((100, n_embd), dtype=np.float32))
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_q.weight", rng.standard_normal((n_embd, n_embd), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 4 * (100 * n_embd + n_layer * n_embd * n_embd)


def test_model_facts_from_a_gguf_file(tmp_path):
    path = tmp_path / "tiny.gguf"
    weights = _tiny_gguf(path)
    f = governor.model_facts(path)
    assert (f.arch, f.n_layer, f.n_embd, f.n_head, f.n_kv_heads, f.head_dim_k, f.n_ctx_train, f.n_vocab) == \
        ("llama", 3, 64, 4, 2, 16, 512, 100)
    assert f.weights_bytes == weights and f.name == "tiny"
    plan = governor.plan_model(f, boards.load_profile("pi_4"), 1 << 30)
    assert plan.n_ctx == 512  # capped by the model's own context
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 8)
    with pytest.raises(ValueError, match="bad.gguf: not a readable GGUF file"):
        governor.model_facts(bad)


# ------------------------------------------------------------------------------------------------
# governor: thermal


def _hot_tree(tmp_path, board="pi_5"):
    root = tmp_path / board
    shutil.copytree(FIXTURES / board, root)
    return root, root / "sys/class/thermal/thermal_zone0/temp"


def test_thermal_hot_cool_sequence_with_hysteresis(tmp_path, caplog):
    root, temp = _hot_tree(tmp_path)
    p = boards.load_profile("pi_5")  # throttle 78 C, restore 68 C, 3 threads, min 1
    changes = []
    w = governor.ThermalWatcher(p, lambda n, why: changes.append((n, why)), root=root)
    seq = [49.4, 77.9, 78.0, 81.2, 84.0, 85.5, 74.0, 69.0, 68.0, 67.5, 66.0, 70.0, 79.0]
    want = [3, 3, 2, 1, 1, 1, 1, 1, 2, 3, 3, 3, 2]
    got = []
    with caplog.at_level(logging.INFO, logger="enigma_edge.governor"):
        for t in seq:
            temp.write_text(f"{int(t * 1000)}\n")
            got.append(w.poll())
    assert got == want
    assert [n for n, _ in changes] == [2, 1, 2, 3, 2]
    assert changes[0][1] == "78.0 C >= throttle 78.0 C" and changes[2][1] == "68.0 C <= restore 68.0 C"
    logged = [r.getMessage() for r in caplog.records if "LLM threads" in r.getMessage()]
    assert logged == ["thermal: LLM threads 3 -> 2 (78.0 C >= throttle 78.0 C)",
                      "thermal: LLM threads 2 -> 1 (81.2 C >= throttle 78.0 C)",
                      "thermal: LLM threads 1 -> 2 (68.0 C <= restore 68.0 C)",
                      "thermal: LLM threads 2 -> 3 (67.5 C <= restore 68.0 C)",
                      "thermal: LLM threads 3 -> 2 (79.0 C >= throttle 78.0 C)"]
    w.close()
    w.close()


def test_thermal_firmware_throttling_flags(tmp_path, caplog):
    root, temp = _hot_tree(tmp_path, "pi_4")
    temp.write_text("60000\n")
    flags = iter([0x0, 0x50005, 0x50005, 0x50000, 0x50000])
    changes = []
    w = governor.ThermalWatcher(boards.load_profile("pi_4"), lambda n, why: changes.append((n, why)),
                                root=root, throttled=lambda: next(flags))
    with caplog.at_level(logging.INFO, logger="enigma_edge.governor"):
        assert [w.poll() for _ in range(5)] == [3, 2, 1, 2, 3]
    assert "under-voltage" in changes[0][1] and "currently throttled" in changes[0][1]
    assert sum("under-voltage (throttled=0x50005" in r.getMessage() for r in caplog.records) == 1


def test_thermal_background_thread_and_no_sensor(tmp_path):
    root, temp = _hot_tree(tmp_path)
    temp.write_text("90000\n")
    p = boards.load_profile("pi_5")
    p = dataclasses.replace(p, thermal=dataclasses.replace(p.thermal, poll_s=0.1))
    import threading
    done = threading.Event()
    seen = []

    def cb(n, why):
        seen.append(n)
        if n == 1:
            done.set()

    with governor.ThermalWatcher(p, cb, root=root):
        assert done.wait(30)
    assert seen == [2, 1]
    w = governor.ThermalWatcher(p, cb, root=tmp_path / "empty")
    assert w.poll() == 3 and w.last_temp is None


@pytest.mark.parametrize("text, value, names", [
    ("throttled=0x0\n", 0, []),
    ("throttled=0x50005\n", 0x50005, ["under-voltage", "currently throttled", "under-voltage has occurred",
                                      "throttling has occurred"]),
    ("throttled=0x80008\n", 0x80008, ["soft temperature limit", "soft temperature limit has occurred"]),
])
def test_vcgencmd_get_throttled(text, value, names):
    v = governor.parse_throttled(text)
    assert v == value and governor.throttled_flags(v) == names


def test_vcgencmd_garbage_is_an_error():
    with pytest.raises(ValueError, match="unexpected vcgencmd output"):
        governor.parse_throttled("error=1 error_msg=\"Command not registered\"")


@pytest.mark.parametrize("backend", ["pocketsphinx", "vosk",
                                     "faster-whisper"])
def test_profile_stt_names_are_what_the_voice_room_accepts(backend):
    stt = pytest.importorskip("enigma_edge.voice.stt")
    assert any(p.stt.backend == backend for p in boards.load_all().values())
    # a known name reaches the backend's constructor, which rejects the probe keyword before any
    # model is loaded; an unknown name is a ValueError
    with pytest.raises(TypeError):
        stt.make_stt(backend, _probe_keyword_=1)
