"""Native format round trip, the pickle converter, and hf: references (fake local Hub, offline errors)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from testkit import ROOT
from fake_hf import FakeHub, each_in_subprocess, repo_from_folder
from gan_fixtures import (golden, golden_discriminator, golden_generator, slideflow_options, write_native,
                          write_reference_pickle)
from synthhist.errors import UserError
from synthhist.gan import load_network, save_network
from synthhist.gan.convert import convert_pickle
from synthhist.refs import parse_hf_ref, pick_network_file


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def _golden_images_match(G, name):
    arrays, _ = golden(name)
    with torch.no_grad():
        img = G(torch.from_numpy(arrays["in/z"]), torch.from_numpy(arrays["in/c"]))
    return (img - torch.from_numpy(arrays["out/img_psi1.0_cutNone_noiseconst"])).abs().max() < 1e-4


@pytest.mark.parametrize("target", ["folder", "json", "safetensors"])
def test_native_round_trip(tmp_path, target):
    config = write_native("g32_cond2", tmp_path / "model", tile_px=32, tile_um=302)
    assert config == tmp_path / "model" / "network.json"
    ref = {"folder": config.parent, "json": config, "safetensors": config.with_suffix(".safetensors")}[target]
    net = load_network(ref, "cpu")
    assert _same_weights(net.G, golden_generator("g32_cond2")) and _golden_images_match(net.G, "g32_cond2")
    assert net.class_names == ["classA", "classB"] and net.c_dim == 2
    assert net.tile_px == 32 and net.tile_um == 302.0 and net.source == str(config)
    assert not net.G.training and not any(p.requires_grad for p in net.G.parameters())
    assert net.D is None and net.G_train is None
    assert sorted(p.name for p in config.parent.iterdir()) == ["network.json", "network.safetensors"]


def test_native_training_networks(tmp_path):
    config = write_native("g16_uncond", tmp_path / "m", training=True)
    net = load_network(config, "cpu", training=True)
    assert _same_weights(net.D, golden_discriminator("g16_uncond"))
    assert _same_weights(net.G_train, golden_generator("g16_uncond"))
    assert net.augment_p == 0.25 and net.D.training and net.class_names is None
    assert json.loads(config.read_text())["networks"] == ["G_ema", "G", "D"]
    assert load_network(config, "cpu").D is None  # G_ema only unless asked


def test_file_pair_stems_and_format_version(tmp_path):
    G = golden_generator("g16_uncond")
    config = save_network(tmp_path / "network-snapshot-000200.json", G, tile_px=16, tile_um=100, extra={"kimg": 200})
    assert config.with_suffix(".safetensors").is_file()
    assert json.loads(config.read_text())["extra"] == {"kimg": 200}
    assert load_network(config, "cpu").tile_um == 100
    cfg = json.loads(config.read_text())
    cfg["format_version"] = 99
    config.write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="format version 99"):
        load_network(config, "cpu")
    with pytest.raises(UserError, match="3 class names"):
        save_network(tmp_path / "x", golden_generator("g32_cond2"), class_names=["a", "b", "c"])


def test_native_bad_files_name_the_file(tmp_path):
    config = write_native("g16_uncond", tmp_path / "m")
    weights = config.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UserError, match="network.safetensors"):
        load_network(config, "cpu")
    weights.unlink()
    with pytest.raises(UserError, match="not found: .*network.safetensors"):
        load_network(config, "cpu")
    config.write_text("{not json")
    with pytest.raises(UserError, match="network.json.*corrupt"):
        load_network(tmp_path / "m", "cpu")
    with pytest.raises(UserError, match="no single native network config"):
        load_network(tmp_path, "cpu")


def test_convert_function_keeps_everything(tmp_path):
    pkl = write_reference_pickle("g32_cond2", tmp_path / "run" / "network-snapshot-000100.pkl",
                                 training_options=slideflow_options("g32_cond2", tile_um=400))
    config = convert_pickle(pkl, tmp_path / "native")
    native, ref = load_network(config, "cpu", training=True), load_network(pkl, "cpu", training=True)
    for a, b in ((native.G, ref.G), (native.G_train, ref.G_train), (native.D, ref.D)):
        assert _same_weights(a, b)
    assert native.class_names == ["classA", "classB"] and native.tile_um == 400 and native.augment_p == 0.25
    assert json.loads(config.read_text())["extra"]["converted_from"] == pkl.name


def test_convert_cli(tmp_path):
    pkl = write_reference_pickle("g16_uncond", tmp_path / "n.pkl", variant="ada")
    out = tmp_path / "native"
    proc = subprocess.run([sys.executable, "-m", "synthhist.gan.convert", str(pkl), str(out), "--ema-only",
                           "--tile-px", "16", "--tile-um", "64"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    net = load_network(out, "cpu", training=True)
    assert net.D is None and net.G_train is None and net.tile_um == 64.0 and _golden_images_match(net.G, "g16_uncond")
    bad = subprocess.run([sys.executable, "-m", "synthhist.gan.convert", str(tmp_path / "missing.pkl"), str(out)],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "missing.pkl" in bad.stderr


# ------------------------------------------------------------------------------------------------ hf:

def test_parse_and_pick():
    assert parse_hf_ref("hf:owner/repo") == ("owner/repo", None, None)
    assert parse_hf_ref("hf:owner/repo/run/net.pkl") == ("owner/repo", None, "run/net.pkl")
    assert parse_hf_ref("hf:owner/repo@v1.0/net.pkl") == ("owner/repo", "v1.0", "net.pkl")
    with pytest.raises(UserError, match="malformed Hugging Face reference"):
        parse_hf_ref("hf:justone")
    assert pick_network_file(["README.md", "network.json", "network.safetensors", "x.pkl"]) == "network.json"
    assert pick_network_file(["a/network-snapshot-000200.pkl", "a/network-snapshot-001000.pkl"]) == \
        "a/network-snapshot-001000.pkl"
    assert pick_network_file(["g.json", "g.safetensors"]) == "g.json"
    assert pick_network_file(["a.pkl", "b.pkl"]) is None


def _load_in_subprocess(refs, env):
    """Load each hf: reference in one fresh process; {ref: 'c_dim class_names tile_px tile_um' or 'ERR msg'}."""
    return each_in_subprocess(refs, "(n := load_network(ref, 'cpu')).c_dim, n.class_names, n.tile_px, n.tile_um",
                              env, "from synthhist.gan import load_network")


@pytest.mark.slow
def test_hf_references_against_local_fake_hub(tmp_path):
    write_native("g16_uncond", tmp_path / "native")
    write_reference_pickle("g32_cond2", tmp_path / "pk" / "network-snapshot-000100.pkl",
                           training_options=slideflow_options("g32_cond2"))
    repos = {"lab/native": repo_from_folder(tmp_path / "native"), "lab/pk": repo_from_folder(tmp_path / "pk", "run/")}
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1")
    expected = {"hf:lab/native": "0 None 16 32.0", "hf:lab/pk": "2 ['classA', 'classB'] 32 400.0",
                "hf:lab/pk/run/network-snapshot-000100.pkl": "2 ['classA', 'classB'] 32 400.0",
                "hf:lab/missing": "ERR hf:lab/missing: Hugging Face repository lab/missing not found",
                "hf:lab/pk/run/other.pkl": "ERR hf:lab/pk/run/other.pkl: file not found in Hugging Face repository"}
    with FakeHub(repos) as hub:
        env["HF_ENDPOINT"] = hub.url
        got = _load_in_subprocess(list(expected), env)
        assert all(got[ref].startswith(out) for ref, out in expected.items()), got
        assert "GET /lab/native/resolve/main/network.safetensors" in hub.requests
    # offline: what is cached still loads; what is not gives one line saying what to download and where
    env["HF_HUB_OFFLINE"] = "1"
    got = _load_in_subprocess(["hf:lab/pk", "hf:lab/uncached"], env)
    assert got["hf:lab/pk"] == expected["hf:lab/pk"]
    assert got["hf:lab/uncached"].startswith("ERR") and "hf download lab/uncached" in got["hf:lab/uncached"]
    assert str(tmp_path / "hf") in got["hf:lab/uncached"] and "HF_HUB_OFFLINE" in got["hf:lab/uncached"]
    # no network at all (nothing listens on the endpoint)
    env.update(HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9")
    got = _load_in_subprocess(["hf:lab/uncached", "hf:lab/native"], env)
    assert "hf download lab/uncached" in got["hf:lab/uncached"] and got["hf:lab/native"] == expected["hf:lab/native"]


def test_save_accepts_shared_tensors(tmp_path):
    G = golden_generator("g16_uncond")
    net = load_network(save_network(tmp_path / "m", G, G_train=G), "cpu", training=True)
    assert _same_weights(net.G, G) and _same_weights(net.G_train, G)
