"""interpolate.py as a subprocess on a golden network in the native format."""

import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest
import torch
from gan_fixtures import golden_generator, write_native
from PIL import Image

from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.explain.video import resize_frames
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
        assert len(frames) == 5 and frames[0].shape == (256, 256, 3) and r.get_meta_data()["fps"] == 30
        assert len(imageio.mimread(out / f"seed{seed:04d}.gif")) == 5
    strip = np.asarray(Image.open(out / "seed0001.png"))
    assert strip.shape == (256, 5 * 256, 3)  # a 32 px network: shown upscaled smoothly to 256 px by default
    G = golden_generator("g32_cond2")
    with torch.no_grad():
        for i, k in ((0, 0), (4, 1)):
            want = to_uint8(G(z_from_seeds([1], 32), onehot(k, 2))).numpy()
            big = resize_frames(want, 256)[0].astype(int)
            got = strip[:, 256 * i:256 * (i + 1)].astype(int)
            assert np.abs(got - big).max() <= 2  # t=0 / t=1: the class images, bicubic upscaled
            assert len(np.unique(got[:8, :8].reshape(-1, 3), axis=0)) > 4  # smooth, not 8 x 8 blocks of one pixel
    assert (out / "log.txt").exists()
    script("interpolate.py", "--network", nets["cond"], "--seeds", "1", "--steps", 5, "--merge", "--size", 32,
           "--outdir", tmp_path / "native")
    native = np.asarray(Image.open(tmp_path / "native" / "seed0001.png"))
    assert native.shape == (32, 5 * 32, 3)  # --size keeps the network's pixels
    assert np.abs(native[:, 4 * 32:].astype(int) - want[0]).max() <= 1  # t=1: the class 1 image as generated


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


def test_original_command_line_forms(script, nets, tmp_path):
    out = tmp_path / "out"
    proc = script("interpolate.py", "--network", nets["cond"], "--seeds", "0-1", "--video=True", "--steps=4",
                  "--start=0", "--end=classB", "--merge", "True", "--gif=False", "--fps", 10, "--size", 64,
                  "--noise_mode", "const", "--outdir", out)
    r = imageio.get_reader(out / "seed0000.mp4")
    frames = [f for f in r]
    assert len(frames) == 4 and frames[0].shape == (64, 64, 3) and r.get_meta_data()["fps"] == 10
    assert np.asarray(Image.open(out / "seed0001.png")).shape == (64, 4 * 64, 3)
    assert not list(out.glob("*.gif")) and not list(out.glob("*-000.png"))
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert len(set(modes.values())) == 1, modes                   # mp4s get the permissions of every other output
    assert "interpolate: 2/2 seeds" in proc.stderr                # the periodic log line off a terminal
    assert "interpolate: 2/2 seeds" in (out / "log.txt").read_text()
    script("interpolate.py", "--network", nets["cond"], "--seeds", "2", "--video", "False", "--steps", 2,
           "--outdir", tmp_path / "frames")
    assert sorted(p.name for p in (tmp_path / "frames").glob("*.png")) == ["seed0002-000.png", "seed0002-001.png"]


def test_class_names_give_the_same_frames(script, nets, tmp_path):
    script("interpolate.py", "--network", nets["cond"], "--seeds", "3", "--steps", 2, "--merge", "--outdir", tmp_path / "i")
    script("interpolate.py", "--network", nets["cond"], "--seeds", "3", "--steps", 2, "--merge", "--start", "CLASSA",
           "--end", "classb", "--outdir", tmp_path / "n")
    assert (tmp_path / "i/seed0003.png").read_bytes() == (tmp_path / "n/seed0003.png").read_bytes()


@pytest.mark.parametrize("args, msg", [
    (("--video=maybe",), "'maybe' is not a valid boolean"),
    (("--end", "gland"), "--end: 'gland' is not a class of the network: its classes are 0 classA, 1 classB"),
    (("--fps", 0), "--fps must be between 1 and 240"),
    (("--size", 100000, "--video"), "--size must be between 8 and 4096"),
    (("--trunc", "nan"), "--trunc must be a finite number"),
    (("--seeds", "0-300000000"), "300000001 seeds is more than the limit"),
    (("--classifier", "nope/model"), "classifier not found: nope/model"),
])
def test_failed_run_leaves_nothing(script, nets, tmp_path, args, msg):
    out = tmp_path / "new"
    args = ("--seeds", "0", *args) if "--seeds" not in args else args
    proc = script("interpolate.py", "--network", nets["cond"], "--outdir", out, *args, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and lines[-1].startswith("Error:") and msg in lines[-1], proc.stderr
    assert len([x for x in lines if x.startswith("Error")]) == 1 and "Usage:" not in proc.stderr
    assert not out.exists()                                        # no folder, no empty log


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


def _run_quiet_env(args, cwd=None):
    """Run a script the way a user's shell does: no TF_CPP_MIN_LOG_LEVEL, no terminal."""
    import os
    import subprocess
    import sys

    from testkit import ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SYNTHHIST_VERBOSE")}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(ROOT / args[0]), *map(str, args[1:])], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_interpolation_probability_figure_path_and_names(models, tmp_path):
    fig = tmp_path / "res" / "probability.png"
    proc = _run_quiet_env(["interpolation_probability.py", "--network", models["net"], "--classifier", models["clf"],
                           "--seeds", "0-7", "--steps", 3, "--out=" + str(fig), "--start", "classA", "--end", "classB",
                           "--thresh-low", 0.25, "--thresh_mid", 0.5, "--batch", 4])
    assert proc.returncode == 0, proc.stderr
    assert fig.is_file() and fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "res/probability_concordance.csv").is_file() and (tmp_path / "res/probability_curves.csv").is_file()
    assert "absl::InitializeLog" not in proc.stderr and "cpu_feature_guard" not in proc.stderr
    assert "concordance: 8/8 seeds" in proc.stderr and "blending:" in proc.stderr   # progress lines off a terminal
    assert not list((tmp_path / "res").glob(".*tmp*"))
