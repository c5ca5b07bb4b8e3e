"""Blend sequences, their writers, and the prediction curves of interpolation_probability (library level)."""

import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest
import torch
from explain_fakes import ToyClassifier, ToyGenerator
from PIL import Image

from synthhist.errors import UserError
from synthhist.explain.bridge import Bridge
from synthhist.explain.interpolate import blend_frames, blend_predictions, format_curve, label_columns
from synthhist.explain.probability import concordant_curves, minmax, normalise_curves, plot_curves
from synthhist.explain.video import MIN_SHOWN_PX, BlendWriter
from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.images import to_uint8


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(2)
    return ToyGenerator(z_dim=8, c_dim=2, w_dim=8, img_resolution=32).eval()


def test_blend_frames_endpoints(G):
    frames = blend_frames(G, 7, 0, 1, steps=5, batch=5)
    assert frames.shape == (5, 32, 32, 3) and frames.dtype == np.uint8
    z = z_from_seeds([7], 8)
    with torch.no_grad():
        for i, k in ((0, 0), (-1, 1)):
            want = to_uint8(G(z, onehot(k, 2))).numpy()[0]
            assert np.abs(frames[i].astype(int) - want).max() <= 1  # other batch size: float rounding only
    same_batch = blend_frames(G, 7, 0, 1, steps=5, batch=2)
    assert np.abs(same_batch.astype(int) - frames).max() <= 1
    layered = blend_frames(G, 7, 0, 1, steps=3, layers=[], batch=3)
    assert (layered == layered[0]).all()  # no layer selected: class A throughout


def test_blend_predictions_per_seed(G):
    clf = ToyClassifier(tile_px=16, tile_um=100.0)
    out = list(blend_predictions(G, [3, 4], 0, 1, 7, Bridge.for_classifier(32, 200.0, clf), clf, batch=3,
                                 keep_frames=True))
    assert [s for s, _, _ in out] == [3, 4]
    seed, curve, frames = out[0]
    assert list(curve.columns) == ["step", "t", "pred0", "pred1"] and len(curve) == 7 and frames.shape == (7, 32, 32, 3)
    assert curve["t"].iloc[0] == 0 and curve["t"].iloc[-1] == 1
    named = label_columns(curve, clf)
    assert list(named.columns[2:]) == ["pred_a", "pred_b"]
    assert format_curve(3, named)[0].startswith("seed 3 step   0 t 0.000: pred_a=")


def test_writer_mp4_gif_strip_frames(tmp_path):
    frames = (np.random.default_rng(0).random((6, 33, 33, 3)) * 255).astype(np.uint8)
    w = BlendWriter(tmp_path, 6, video=True, gif=True, merge=True, size=33)
    assert not w.done(1)
    w.write(1, frames)
    assert w.done(1)
    r = imageio.get_reader(tmp_path / "seed0001.mp4")
    got = [f for f in r]
    assert len(got) == 6 and got[0].shape == (34, 34, 3) and r.get_meta_data()["fps"] == 30
    assert len(imageio.mimread(tmp_path / "seed0001.gif")) == 6
    assert Image.open(tmp_path / "seed0001.png").size == (6 * 33, 33)
    BlendWriter(tmp_path / "f", 6).write(2, frames)
    assert sorted(p.name for p in (tmp_path / "f").iterdir())[::5] == ["seed0002-000.png", "seed0002-005.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "f" / "seed0002-003.png")), frames[3])


def test_writer_upscales_small_frames_by_default(tmp_path):
    frames = (np.random.default_rng(0).random((3, 40, 40, 3)) * 255).astype(np.uint8)
    BlendWriter(tmp_path, 3, merge=True).write(1, frames)
    assert Image.open(tmp_path / "seed0001.png").size == (3 * MIN_SHOWN_PX, MIN_SHOWN_PX)
    big = (np.random.default_rng(1).random((2, 300, 300, 3)) * 255).astype(np.uint8)
    BlendWriter(tmp_path, 2, merge=True).write(2, big)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "seed0002.png")), np.concatenate(list(big), axis=1))


def test_minmax_and_flat_curve():
    assert minmax(np.array([1.0, 3.0, 2.0])).tolist() == [0.0, 1.0, 0.5]
    assert minmax(np.array([0.4, 0.4])).tolist() == [0.0, 0.0]
    df = pd.DataFrame({"seed": [1, 1, 2, 2], "step": [0, 1, 0, 1], "pred": [0.2, 0.6, 0.5, 0.5]})
    assert normalise_curves(df)["pred_norm"].tolist() == [0.0, 1.0, 0.0, 0.0]


def test_concordant_curves_and_plot(G, tmp_path):
    clf = ToyClassifier(tile_px=16, tile_um=100.0)
    bridge = Bridge.for_classifier(32, 200.0, clf)
    search = pd.DataFrame({"seed": [0, 1, 2], "concordance": ["strong", "none", "weak"]})
    curves = concordant_curves(G, search, 0, 1, 4, bridge, clf, 1, batch=4)
    assert sorted(curves["seed"].unique()) == [0, 2] and len(curves) == 8
    assert curves.groupby("seed")["pred_norm"].max().tolist() == [1.0, 1.0]
    plot_curves(curves, tmp_path / "p.png", title="t")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(tmp_path / "p.png").size == (600, 400)
    with pytest.raises(UserError, match="no strong or weak seed among the 3 seeds"):
        concordant_curves(G, search.assign(concordance="none"), 0, 1, 4, bridge, clf, 1)
