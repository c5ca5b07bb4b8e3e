"""interpolate.py as a subprocess on a golden network in the native format."""

import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest
import torch
from gan_fixtures import golden_generator, write_native
from PIL import Image

from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.images import to_uint8


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    d = tmp_path_factory.mktemp("nets")
    return {"cond": write_native("g32_cond2", d / "cond"), "uncond": write_native("g16_uncond", d / "uncond")}


def test_video_gif_strip(script, nets, tmp_path):
    out = tmp_path / "out"
    script("interpolate.py", "--network", nets["cond"], "--seeds", "0-1", "--steps", 5, "--video", "--gif",
           "--merge", "--outdir", out, "--batch", 3, "--device", "cpu")
    for seed in (0, 1):
        r = imageio.get_reader(out / f"seed{seed:04d}.mp4")
        frames = [f for f in r]
        assert len(frames) == 5 and frames[0].shape == (32, 32, 3) and r.get_meta_data()["fps"] == 30
        assert len(imageio.mimread(out / f"seed{seed:04d}.gif")) == 5
    strip = np.asarray(Image.open(out / "seed0001.png"))
    assert strip.shape == (32, 5 * 32, 3)
    G = golden_generator("g32_cond2")
    with torch.no_grad():
        for i, k in ((0, 0), (4, 1)):
            want = to_uint8(G(z_from_seeds([1], 32), onehot(k, 2))).numpy()[0]
            assert np.abs(strip[:, 32 * i:32 * (i + 1)].astype(int) - want).max() <= 1  # t=0 / t=1: the class images
    assert (out / "log.txt").exists()


def test_layer_blend_frames_and_resume(script, nets, tmp_path):
    out = tmp_path / "out"
    args = ("--network", nets["cond"], "--seeds", "2", "--steps", 3, "--layers", "coarse", "--outdir", out)
    script("interpolate.py", *args)
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == ["seed0002-000.png", "seed0002-001.png", "seed0002-002.png"]
    mtime = (out / "seed0002-002.png").stat().st_mtime_ns
    proc = script("interpolate.py", *args)
    assert "already done" in proc.stderr and (out / "seed0002-002.png").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("args, msg", [
    (("--steps", 1), "--steps must be at least 2"),
    (("--end", 2), "class 2 is out of range"),
    (("--seeds", "4294967296"), "out of range"),
    (("--layers", "8"), "layer index 8 is out of range"),
    (("--uncond",), "unconditional"),
])
def test_bad_input(script, nets, tmp_path, args, msg):
    net = nets["uncond"] if args == ("--uncond",) else nets["cond"]
    args = () if args == ("--uncond",) else args
    proc = script("interpolate.py", "--network", net, "--seeds", "0", "--outdir", tmp_path, *args, check=False)
    assert proc.returncode == 1 and msg in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error:") and msg in last and "Traceback" not in proc.stderr, proc.stderr


# ------------------------------------------------------------------- with a classifier (small Keras model)

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from explain_fixtures import build_models

    return build_models(tmp_path_factory.mktemp("models"), list(range(8)))


@pytest.mark.slow
def test_interpolate_with_classifier(script, models, tmp_path):
    proc = script("interpolate.py", "--network", models["net"], "--classifier", models["clf"], "--seeds", "1",
                  "--steps", 4, "--merge", "--outdir", tmp_path)
    curve = pd.read_csv(tmp_path / "seed0001.csv")
    assert list(curve.columns) == ["step", "t", "pred_a", "pred_b"] and len(curve) == 4
    assert curve["pred_b"].iloc[0] == pytest.approx(0.1, abs=2e-3)  # seed 1 is calibrated to 0.1 -> 0.9
    assert curve["pred_b"].iloc[-1] == pytest.approx(0.9, abs=2e-3)
    assert proc.stdout.count("seed 1 step") == 4 and (tmp_path / "seed0001.png").exists()


@pytest.mark.slow
def test_interpolation_probability(script, models, tmp_path):
    proc = script("interpolation_probability.py", "--network", models["net"], "--classifier", models["clf"],
                  "--seeds", "0-7", "--steps", 5, "--outdir", tmp_path, "--batch", 4)
    search = pd.read_csv(tmp_path / "concordance.csv")
    keep = sorted(search.loc[search["concordance"] != "none", "seed"])
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert sorted(curves["seed"].unique()) == keep and len(keep) >= 2
    assert curves.groupby("seed").size().tolist() == [5] * len(keep)
    assert (curves.groupby("seed")["pred_norm"].agg(["min", "max"]).values == [0.0, 1.0]).all()
    png = tmp_path / "interpolation_probability.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(png).size == (600, 400)
    assert f"{len(keep)} concordant seeds" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("args, msg", [
    (("--thresh_low", 0.0, "--thresh_mid", 0.99, "--thresh_high", 0.999), "no strong or weak seed among the 8 seeds"),
    (("--steps", 1), "--steps must be at least 2"),
    (("--end", 5), "class 5 is out of range"),
])
def test_interpolation_probability_bad_input(script, models, tmp_path, args, msg):
    proc = script("interpolation_probability.py", "--network", models["net"], "--classifier", models["clf"],
                  "--seeds", "0-7", "--outdir", tmp_path, *args, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("Error:") and msg in last and "Traceback" not in proc.stderr
