"""Reference network pickles are read without executing anything and reproduce the golden outputs."""

import os
import pickle

import numpy as np
import pytest
import torch

from gan_fixtures import (EXPLODING_SRC, Global, RefPickler, golden, golden_state, reference_snapshot,
                          slideflow_options, write_reference_pickle)
from synthhist.errors import UserError
from synthhist.gan import load_network
from synthhist.gan.pickle_io import read_network_pickle, record_state_dict
from synthhist.gan.reference_config import generator_kwargs

VARIANTS = [  # (golden, variant, module prefix of the writer, numpy spelling, pickle protocol)
    ("g32_cond2", "nv3", "", "numpy._core", 4),
    ("g32_cond2", "ada", "", "numpy.core", 4),
    ("g16_uncond", "nv3", "stylegan3.", "numpy.core", 3),
    ("g64_cond3_map8", "nv3", "slideflow.gan.stylegan3.stylegan3.", "numpy._core", 4),
    ("g16_uncond", "ada", "slideflow.gan.stylegan2.stylegan2.", "numpy.core", 2),
]


def _check_images(G, name, all_modes=False):
    """Compare with the golden images (psi 1 / noise const, and with all_modes every psi and noise mode)."""
    arrays, _ = golden(name)
    z, c = torch.from_numpy(arrays["in/z"]), torch.from_numpy(arrays["in/c"])
    keys = [k for k in arrays if k.startswith("out/img_psi") and "cutNone" in k]
    for key in keys if all_modes else ["out/img_psi1.0_cutNone_noiseconst"]:
        psi, noise = float(key.split("psi")[1].split("_")[0]), key.split("noise")[1]
        img = G.synthesis(G.mapping(z, c, truncation_psi=psi), noise_mode=noise)
        assert (img - torch.from_numpy(arrays[key])).abs().max() < 1e-4, key


@pytest.mark.parametrize("name,variant,prefix,spelling,protocol", VARIANTS)
def test_reference_pickle_matches_golden(tmp_path, name, variant, prefix, spelling, protocol):
    path = write_reference_pickle(name, tmp_path / "network-snapshot-000000.pkl", protocol=protocol, variant=variant,
                                  module_prefix=prefix, numpy_spelling=spelling)
    net = load_network(path, "cpu")
    assert not net.G.training and not any(p.requires_grad for p in net.G.parameters())
    assert net.G_train is None and net.D is None and net.class_names is None and net.tile_um is None
    # num_fp16_res / conv_clamp are not in NV3 init_kwargs: they must come from the per-layer attributes
    kw = golden(name)[1]["G_kwargs"]
    assert {k: net.G.init_kwargs[k] for k in ("num_fp16_res", "conv_clamp", "channel_base", "channel_max")} == \
        {k: kw[k] for k in ("num_fp16_res", "conv_clamp", "channel_base", "channel_max")}
    assert net.G.mapping.w_avg_beta == (0.998 if variant == "nv3" else 0.995)
    with torch.no_grad():
        _check_images(net.G, name, all_modes=(name, variant) == ("g32_cond2", "nv3"))


def test_state_dict_walk_reproduces_reference_names_and_order(tmp_path):
    data = read_network_pickle(write_reference_pickle("g32_cond2", tmp_path / "a.pkl"))
    for key, net in (("G_ema", "G"), ("G", "G"), ("D", "D")):
        sd, ref = record_state_dict(data[key]), golden_state("g32_cond2", net)
        assert list(sd) == list(ref)
        assert all(torch.equal(sd[k], ref[k]) for k in ref)


def test_training_networks_and_slideflow_options(tmp_path):
    path = write_reference_pickle("g32_cond2", tmp_path / "run" / "network-snapshot-000200.pkl",
                                  training_options=slideflow_options("g32_cond2", tile_um=302.0))
    net = load_network(path, "cpu", training=True)
    assert net.class_names == ["classA", "classB"] and net.tile_px == 32 and net.tile_um == 302.0
    assert net.augment_p == pytest.approx(0.25)
    assert net.G_train.training and net.D.training
    arrays, _ = golden("g32_cond2")
    with torch.no_grad():
        logits = net.D.eval()(torch.from_numpy(arrays["out/img_psi1.0_cutNone_noiseconst"]), torch.from_numpy(arrays["in/c"]))
        _check_images(net.G_train.eval(), "g32_cond2")
    assert (logits - torch.from_numpy(arrays["out/D_logits"])).abs().max() < 1e-4


def test_easydict_and_numpy_scalars_are_decoded(tmp_path):
    data = read_network_pickle(write_reference_pickle("g32_cond2", tmp_path / "a.pkl", variant="ada",
                                                      numpy_spelling="numpy.core"))
    G = data["G_ema"]
    init = G.state["_init_kwargs"]
    assert type(init) is dict and type(init["synthesis_kwargs"]) is dict and init["synthesis_kwargs"]["conv_clamp"] == 256
    gain = G.child("synthesis").child("b8").child("conv0").state["act_gain"]
    assert isinstance(gain, np.float64) and gain == pytest.approx(np.sqrt(2))
    assert "ada" in G.src_flags and generator_kwargs(G)["mapping_kwargs"]["w_avg_beta"] == 0.995


def test_embedded_source_is_never_executed(tmp_path):
    marker = tmp_path / "executed.txt"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n" + EXPLODING_SRC
    net = load_network(write_reference_pickle("g16_uncond", tmp_path / "a.pkl", module_src=src), "cpu")
    assert net.G.img_resolution == 16 and not marker.exists()


class _Shell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _dump(obj, path, protocol=4):
    with open(path, "wb") as f:
        RefPickler(f, protocol=protocol).dump(obj)
    return path


@pytest.mark.parametrize("where", ["top", "nested"])
def test_shell_payload_is_refused(tmp_path, where):
    marker = tmp_path / "pwned"
    if where == "top":
        obj = _Shell(marker)
    else:  # hidden inside a network attribute of an otherwise valid snapshot
        obj = reference_snapshot("g16_uncond")
        obj["G_ema"].meta["state"]["z_dim"] = _Shell(marker)
    path = _dump(obj, tmp_path / "evil.pkl")
    with pytest.raises(UserError, match=r"refused.*nothing was executed") as e:
        load_network(path, "cpu")
    assert "evil.pkl" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("subprocess", "Popen"), ("posix", "system"),
                                         ("torch", "load"), ("numpy", "load"), ("torch_utils.misc", "anything")])
def test_other_globals_are_refused(tmp_path, module, name):
    path = _dump({"G_ema": Global(module, name)}, tmp_path / "g.pkl")
    with pytest.raises(UserError, match=f"{module}.{name}"):
        read_network_pickle(path)


def test_persistence_version_must_be_6(tmp_path):
    path = write_reference_pickle("g16_uncond", tmp_path / "a.pkl", version=5)
    with pytest.raises(UserError, match="persistence version 5"):
        load_network(path, "cpu")


def test_unknown_class_is_a_clear_error(tmp_path):
    obj = reference_snapshot("g16_uncond")
    obj["G_ema"].meta["state"]["_modules"]["synthesis"].meta["class_name"] = "SuperResolutionNetwork"
    with pytest.raises(UserError, match="unknown network class 'SuperResolutionNetwork' at G.synthesis"):
        load_network(_dump(obj, tmp_path / "a.pkl"), "cpu")


def test_legacy_tensorflow_pickle_is_a_clear_error(tmp_path):
    net = Global("dnnlib.tflib.network", "Network")
    path = _dump((net, net, net), tmp_path / "tf.pkl", protocol=2)
    with pytest.raises(UserError, match="legacy TensorFlow.*legacy.py"):
        load_network(path, "cpu")


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage", b"not a pickle at all"])
def test_corrupt_pickle_names_the_file(tmp_path, content):
    path = tmp_path / "broken.pkl"
    path.write_bytes(content)
    with pytest.raises(UserError, match="broken.pkl"):
        load_network(path, "cpu")


def test_truncated_pickle_names_the_file(tmp_path):
    path = write_reference_pickle("g16_uncond", tmp_path / "t.pkl")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="t.pkl"):
        load_network(path, "cpu")


def test_torch_zip_file_and_plain_dict_are_rejected(tmp_path):
    torch.save({"a": torch.zeros(1)}, tmp_path / "z.pkl")
    with pytest.raises(UserError, match="z.pkl"):
        load_network(tmp_path / "z.pkl", "cpu")
    (tmp_path / "d.pkl").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(UserError, match="holds no G_ema"):
        load_network(tmp_path / "d.pkl", "cpu")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found: .*nothere.pkl"):
        load_network(tmp_path / "nothere.pkl", "cpu")


def test_unpickler_does_not_touch_sys_modules(tmp_path):
    import sys

    before = set(sys.modules)
    read_network_pickle(write_reference_pickle("g16_uncond", tmp_path / "a.pkl",
                                               module_prefix="slideflow.gan.stylegan3.stylegan3."))
    assert not {m for m in set(sys.modules) - before if "torch_utils" in m or "dnnlib" in m or "slideflow" in m}
