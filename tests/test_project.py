"""project.py (projection of a tile into the GAN) and interpolate.py --projected, as subprocesses on a golden GAN."""

import numpy as np
import pandas as pd
import pytest
import torch
from gan_fixtures import golden_generator, write_native
from PIL import Image

from synthhist.explain.projection import class_mean_w, load_projection
from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.images import save_image, to_uint8
from synthhist.wsi.tfrecord import write_tfrecord

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    d = tmp_path_factory.mktemp("nets")
    return {"cond": write_native("g32_cond2", d / "cond", training=True, tile_um=64.0),
            "uncond": write_native("g16_uncond", d / "uncond")}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A 32 px image the network made itself (seed 7, class 1, const noise) and its ws."""
    d = tmp_path_factory.mktemp("made")
    G = golden_generator("g32_cond2")
    with torch.no_grad():
        ws = G.mapping(z_from_seeds([7], G.z_dim), onehot(1, 2))
        img = to_uint8(G.synthesis(ws))[0].numpy()
    save_image(d / "seed7.png", img)
    return d / "seed7.png", img, ws.numpy()


def mse(a, b):
    return float(((a.astype(float) - b.astype(float)) ** 2).mean())


def test_project_generated_image(script, nets, made, tmp_path):
    path, img, _ = made
    out = tmp_path / "proj"
    script("project.py", "--network", nets["cond"], "--target", path, "--class", 1, "--steps", 40, "--loss", "pixel",
           "--outdir", out, "--device", "cpu", "--save-video")
    for f in ("target.png", "proj.png", "projected_w.npz", "loss.csv", "proj.mp4"):
        assert (out / f).is_file(), f
    loss = pd.read_csv(out / "loss.csv")
    assert list(loss.columns) == ["step", "loss"] and len(loss) == 40
    assert loss["loss"].iloc[-5:].mean() < loss["loss"].iloc[:5].mean()
    assert np.array_equal(np.asarray(Image.open(out / "target.png")), img)
    G = golden_generator("g32_cond2")
    p = load_projection(out / "projected_w.npz", G)
    assert p.w.shape == (1, G.num_ws, G.w_dim) and p.class_idx == 1 and p.space == "w" and p.loss == "pixel"
    assert np.allclose(p.w, p.w[:, :1]) and set(p.noise) >= {"b4.conv1", "b32.conv1"}
    with torch.no_grad():
        start = to_uint8(G.synthesis(class_mean_w(G, 1)[0][:, None].expand(1, G.num_ws, -1)))[0].numpy()
    assert mse(np.asarray(Image.open(out / "proj.png")), img) < mse(start, img)  # beats the class-mean start


def test_project_wplus_disc_auto_class(script, nets, made, tmp_path):
    out = tmp_path / "proj"
    proc = script("project.py", "--network", nets["cond"], "--target", made[0], "--space", "w+", "--loss", "disc",
                  "--steps", 5, "--outdir", out, "--device", "cpu")
    p = load_projection(out / "projected_w.npz")
    assert p.space == "w+" and p.loss == "disc" and p.class_idx in (0, 1)
    assert "class auto" in proc.stderr


def test_project_tfrecord_tile(script, nets, tmp_path):
    """A 64 px / 128 um TFRecord tile is centre-cropped to the GAN's 64 um and resized to 32 px."""
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    d = tmp_path / "64px_128um"
    d.mkdir()
    recs = []
    for i, t in enumerate(tiles):
        import io
        buf = io.BytesIO()
        Image.fromarray(t).save(buf, format="PNG")
        recs.append({"slide": "s", "image_raw": buf.getvalue(), "loc_x": i, "loc_y": 0})
    write_tfrecord(d / "s.tfrecords", recs)
    out = tmp_path / "proj"
    script("project.py", "--network", nets["cond"], "--tfrecord", d / "s.tfrecords", "--index", 2, "--class", 0,
           "--steps", 2, "--loss", "pixel", "--outdir", out, "--device", "cpu")
    assert np.array_equal(np.asarray(Image.open(out / "target.png")), tiles[2][16:48, 16:48])
    proc = script("project.py", "--network", nets["cond"], "--tfrecord", d / "s.tfrecords", "--index", 3,
                  "--outdir", tmp_path / "bad", "--loss", "pixel", check=False)
    assert proc.returncode != 0 and "Error: --index 3 is out of range" in proc.stderr and "Traceback" not in proc.stderr


def test_project_bad_input(script, nets, made, tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "tiny.png")
    cases = [((nets["cond"], tmp_path / "text.png"), (), "is not an image"),
             ((nets["cond"], tmp_path / "grey.png"), (), "1 channel"),
             ((nets["cond"], tmp_path / "tiny.png"), (), "far smaller"),
             ((nets["cond"], made[0]), ("--class", 5), "class 5 is out of range"),
             ((nets["uncond"], made[0]), ("--class", 0), "unconditional")]
    for (net, target), extra, msg in cases:
        proc = script("project.py", "--network", net, "--target", target, "--steps", 2, "--loss", "pixel",
                      "--outdir", tmp_path / "out", "--device", "cpu", *extra, check=False)
        assert proc.returncode == 1 and msg in proc.stderr and "Traceback" not in proc.stderr, (msg, proc.stderr)
        assert not (tmp_path / "out" / "projected_w.npz").exists()


def test_counterfactual_from_projection(script, nets, made, tmp_path):
    proj = tmp_path / "tiles" / "tileA"
    script("project.py", "--network", nets["cond"], "--target", made[0], "--class", 1, "--steps", 10,
           "--loss", "pixel", "--outdir", proj, "--device", "cpu")
    out = tmp_path / "cf"
    script("interpolate.py", "--network", nets["cond"], "--projected", proj / "projected_w.npz", "--start", 1,
           "--end", 0, "--steps", 4, "--merge", "--size", 32, "--outdir", out, "--device", "cpu")  # native pixels
    strip = np.asarray(Image.open(out / "tileA.png"))
    assert strip.shape == (32, 4 * 32, 3)
    recon = np.asarray(Image.open(proj / "proj.png"))
    assert np.abs(strip[:, :32].astype(int) - recon).max() <= 1  # t = 0 is the reconstruction
    assert mse(strip[:, 96:], recon) > 0  # t = 1 moved
    # a folder of projections; reruns skip what is done
    proc = script("interpolate.py", "--network", nets["cond"], "--projected", tmp_path / "tiles", "--start", 1,
                  "--end", 0, "--steps", 4, "--merge", "--outdir", out, "--device", "cpu")
    assert "already done" in proc.stderr
    proc = script("interpolate.py", "--network", nets["cond"], "--outdir", out, check=False)
    assert proc.returncode == 1 and "--seeds or --projected" in proc.stderr


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from explain_fixtures import build_models

    return build_models(tmp_path_factory.mktemp("models"), list(range(8)))


def test_counterfactual_predictions_and_concordance(script, models, made, tmp_path):
    proj = tmp_path / "tiles" / "t1"
    script("project.py", "--network", models["net"], "--target", made[0], "--class", 0, "--steps", 5,
           "--loss", "pixel", "--outdir", proj, "--device", "cpu")
    out = tmp_path / "cf"
    proc = script("interpolate.py", "--network", models["net"], "--projected", proj / "projected_w.npz",
                  "--classifier", models["clf"], "--start", 0, "--end", 1, "--steps", 4, "--merge", "--outdir", out)
    curve = pd.read_csv(out / "t1.csv")
    assert list(curve.columns) == ["step", "t", "pred_a", "pred_b"] and len(curve) == 4
    assert curve["t"].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert (out / "t1-pred.png").is_file() and proc.stdout.count("t1 step") == 4
    csv = tmp_path / "conc.csv"
    script("concordance.py", "--network", models["net"], "--classifier", models["clf"], "--projected",
           tmp_path / "tiles", "--start", 0, "--end", 1, "--out", csv)
    df = pd.read_csv(csv)
    assert list(df.columns) == ["tile", "pred_target", "pred_start", "pred_end", "concordance"] and len(df) == 1
    assert df["pred_start"][0] == pytest.approx(curve["pred_b"].iloc[0], abs=1e-4)
    assert df["pred_end"][0] == pytest.approx(curve["pred_b"].iloc[-1], abs=1e-4)
    assert np.isfinite(df["pred_target"][0])


def test_lpips_missing_is_one_line(script, nets, made, tmp_path):
    from synthhist.explain.losses import lpips_available

    if lpips_available():
        pytest.skip("lpips is installed here")
    proc = script("project.py", "--network", nets["cond"], "--target", made[0], "--loss", "lpips", "--steps", 2,
                  "--class", 0, "--outdir", tmp_path / "out", "--device", "cpu", check=False)
    assert proc.returncode == 1 and "Error: --loss lpips needs the optional package 'lpips'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = script("project.py", "--network", nets["cond"], "--target", made[0], "--steps", 2, "--class", 0,
                  "--outdir", tmp_path / "default", "--device", "cpu")  # default: pixel, said so
    assert "distance: pixel (the optional lpips package is not installed)" in proc.stderr
