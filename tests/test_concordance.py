"""Concordance rule, defaults, the GAN -> classifier bridge and the pipelined seed search."""

import numpy as np
import pandas as pd
import pytest
import torch
from explain_fakes import ToyClassifier, ToyGenerator, ToyNetwork

from synthhist.errors import UserError
from synthhist.explain.bridge import Bridge, Timings, gan_tile, predict_stream
from synthhist.explain.concordance import (concordance, default_outcome, percentages, resumable_seed_search,
                                           seed_search)
from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.images import to_uint8

TH = (0.25, 0.5, 0.75)


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(1)
    return ToyGenerator(z_dim=8, c_dim=2, w_dim=8, img_resolution=32).eval()


def test_rule_strict_inequalities_ties_and_reversal():
    cases = [  # (pred_start, pred_end, expected)
        (0.1, 0.9, "strong"),
        (0.25, 0.9, "weak"),    # start == low: not strong
        (0.1, 0.75, "weak"),    # end == high: not strong
        (0.3, 0.6, "weak"),
        (0.5, 0.9, "none"),     # start == mid
        (0.1, 0.5, "none"),     # end == mid
        (0.5, 0.5, "none"),
        (0.9, 0.1, "none"),     # reversed direction
        (0.6, 0.4, "none"),
        (0.2, 0.3, "none"),     # both below mid
        (0.7, 0.95, "none"),    # both above mid
    ]
    ps, pe, want = zip(*cases)
    assert concordance(np.array(ps), np.array(pe), TH).tolist() == list(want)
    # linear thresholds of the thyroid model
    assert concordance([-0.6, -0.4, 0.0], [0.6, 0.4, 0.6], (-0.5, 0.0, 0.5)).tolist() == ["strong", "weak", "none"]


def test_percentages_of_seeds_run():
    df = pd.DataFrame({"concordance": ["strong", "weak", "none", "none"]})
    assert percentages(df) == {"strong": 25.0, "weak": 25.0, "none": 50.0}


def test_default_outcome():
    assert default_outcome(ToyClassifier(), None, (None, None, None)) == (1, (0.25, 0.5, 0.75))
    lin = ToyClassifier(model_type="linear")
    assert default_outcome(lin, None, (None, None, None)) == (0, (-0.5, 0.0, 0.5))
    lin.params["outcome_range"] = [0, 10]
    assert default_outcome(lin, None, (None, 4.0, None)) == (0, (2.5, 4.0, 7.5))
    assert default_outcome(ToyClassifier(), 0, (0.1, None, 0.9)) == (0, (0.1, 0.5, 0.9))
    with pytest.raises(UserError, match="outcome_idx 2 is out of range"):
        default_outcome(ToyClassifier(), 2, (None, None, None))
    with pytest.raises(UserError, match="low <= mid <= high"):
        default_outcome(ToyClassifier(), None, (0.6, None, None))


def test_gan_tile_and_bridge_geometry(G):
    net = ToyNetwork(G)
    with pytest.raises(UserError, match="--gan-um"):
        gan_tile(net)
    assert gan_tile(net, gan_um=400) == (32, 400.0)
    assert gan_tile(ToyNetwork(G, 32, 400)) == (32, 400.0)
    assert gan_tile(ToyNetwork(G, 32, 400), gan_um=200) == (32, 200.0)
    with pytest.raises(UserError, match="does not match"):
        gan_tile(net, gan_px=64, gan_um=400)
    with pytest.raises(UserError, match="larger than the GAN"):
        Bridge(32, 200.0, 16, 302.0)
    img = G(z_from_seeds([0, 1], 8), onehot(0, 2, 2))
    # 200 -> 100 um on 32 px: 16 px crop at offset 8, no resize when the classifier wants 16 px
    x = Bridge(32, 200.0, 16, 100.0)(img)
    assert x.dtype == np.uint8 and x.shape == (2, 16, 16, 3)
    assert np.array_equal(x, to_uint8(img)[:, 8:24, 8:24].numpy())
    # resize: the paper's 400 um / 512 px -> 302 um / 299 px geometry, scaled down
    y = Bridge(32, 400.0, 20, 302.0)(img)
    assert y.shape == (2, 20, 20, 3)


def test_seed_search_matches_direct_prediction(G):
    clf = ToyClassifier(tile_px=16, tile_um=100.0)
    bridge = Bridge.for_classifier(32, 200.0, clf)
    seeds = list(range(11))
    t = Timings()
    df = seed_search(G, seeds, 0, 1, bridge, clf, 1, TH, batch=4, timings=t)
    assert df["seed"].tolist() == seeds and list(df.columns) == ["seed", "pred_start", "pred_end", "concordance"]
    z = z_from_seeds(seeds, 8)
    with torch.no_grad():
        ps = clf.predict(bridge(G(z, onehot(0, 2, 11))))[:, 1]
        pe = clf.predict(bridge(G(z, onehot(1, 2, 11))))[:, 1]
    assert np.allclose(df["pred_start"], ps, atol=1e-4) and np.allclose(df["pred_end"], pe, atol=1e-4)
    assert df["concordance"].tolist() == concordance(df["pred_start"], df["pred_end"], TH).tolist()
    assert t.generator > 0 and t.classifier > 0 and t.wall > 0
    assert [s[0] for s in clf.seen[:3]] == [8, 8, 6]  # start + end images of each batch in one call


def test_pipeline_errors_and_early_exit():
    clf = ToyClassifier(tile_px=8, tile_um=100.0)
    bridge = Bridge(8, 100.0, 8, 100.0)

    def render(i):
        if i == 3:
            raise UserError("boom in the generator")
        return torch.zeros(1, 3, 8, 8)

    got = []
    with pytest.raises(UserError, match="boom"):
        for item, _, _ in predict_stream(range(10), render, bridge, clf):
            got.append(item)
    assert got == [0, 1, 2]
    calls = []

    def counted(i):
        calls.append(i)
        return torch.zeros(1, 3, 8, 8)

    for item, p, frames in predict_stream(range(1000), counted, bridge, clf, depth=2, keep_frames=True):
        assert frames.shape == (1, 8, 8, 3) and p.shape == (1, 2)
        break
    assert len(calls) <= 5  # the producer stopped (bounded queue), it did not render all 1000


def test_resume(G, tmp_path):
    clf = ToyClassifier(tile_px=16, tile_um=100.0)
    kw = dict(G=G, start=0, end=1, bridge=Bridge.for_classifier(32, 200.0, clf), clf=clf, outcome_idx=1,
              thresholds=TH, batch=3)
    out = tmp_path / "c.csv"
    full = resumable_seed_search(out, {"a": 1}, [0, 1, 2, 3, 4, 5], **kw)
    assert out.exists() and not (tmp_path / "c.csv.partial.csv").exists()
    # an interrupted run left three seeds in the partial file: only the rest are computed
    (tmp_path / "c.csv.partial.json").write_text('{"a": 1}')
    full.iloc[:3].to_csv(tmp_path / "c.csv.partial.csv", index=False)
    clf.seen.clear()
    again = resumable_seed_search(out, {"a": 1}, [0, 1, 2, 3, 4, 5], **kw)
    assert [s[0] for s in clf.seen] == [6]
    pd.testing.assert_frame_equal(again, full)
    # other settings: the partial file is not reused
    (tmp_path / "c.csv.partial.json").write_text('{"a": 2}')
    full.iloc[:3].to_csv(tmp_path / "c.csv.partial.csv", index=False)
    clf.seen.clear()
    resumable_seed_search(out, {"a": 1}, [0, 1, 2, 3, 4, 5], **kw)
    assert sum(s[0] for s in clf.seen) == 12


@pytest.mark.parametrize("torn", ["3,0.1", "3,0.12,0.9,stro", "3,0.1,,strong", "{row3}4,0."])
def test_resume_drops_torn_rows(G, tmp_path, torn):
    clf = ToyClassifier(tile_px=16, tile_um=100.0)
    kw = dict(G=G, start=0, end=1, bridge=Bridge.for_classifier(32, 200.0, clf), clf=clf, outcome_idx=1,
              thresholds=TH, batch=3)
    out = tmp_path / "c.csv"
    full = resumable_seed_search(out, {"a": 1}, [0, 1, 2, 3, 4, 5], **kw)
    (tmp_path / "c.csv.partial.json").write_text('{"a": 1}')
    row3 = full.iloc[3:4].to_csv(index=False, header=False)
    text = full.iloc[:3].to_csv(index=False) + torn.format(row3=row3)  # killed while writing a row: no newline
    (tmp_path / "c.csv.partial.csv").write_text(text)
    again = resumable_seed_search(out, {"a": 1}, [0, 1, 2, 3, 4, 5], **kw)
    assert not again.isna().any().any() and again["seed"].tolist() == [0, 1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(again[["seed", "concordance"]], full[["seed", "concordance"]])
    assert np.allclose(again["pred_end"], full["pred_end"], atol=1e-6)
    assert not pd.read_csv(out).isna().any().any()


def test_thresholds_outside_the_output_range_warn(caplog):
    with caplog.at_level("WARNING", logger="synthhist"):
        default_outcome(ToyClassifier(), None, (-0.5, 0.0, 0.5))
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "threshold low -0.5 outside the classifier's output range [0, 1] (probabilities)" in msgs[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="synthhist"):
        default_outcome(ToyClassifier(), None, (None, None, None))
        default_outcome(ToyClassifier(model_type="linear"), None, (-0.5, 0.0, 0.5))  # no recorded range: no warning
    assert not caplog.records


def test_one_class_validator(G):
    from synthhist.gan.classes import resolve_class

    net = ToyNetwork(G)
    net.class_names = ["Braf-like", "Ras-like"]
    assert [resolve_class(net, v) for v in (0, "1", "ras-LIKE", " Braf-like ", None)] == [0, 1, 1, 0, None]
    with pytest.raises(UserError, match=r"--end: 'gland' is not a class of the network: its classes are "
                                        r"0 Braf-like, 1 Ras-like$"):
        resolve_class(net, "gland", "--end")
    with pytest.raises(UserError, match=r"--class: class 2 is out of range: the network has 2 classes \(0 to 1\)"):
        resolve_class(net, 2)
    net.class_names = None
    with pytest.raises(UserError, match="it has no class names; use an index, 0 to 1"):
        resolve_class(net, "gland")


# ----------------------------------------------------------------------------------- concordance.py script

SEEDS = list(range(8))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from explain_fixtures import build_models

    return build_models(tmp_path_factory.mktemp("models"), SEEDS)


@pytest.mark.slow
def test_concordance_script(script, models, tmp_path):
    from synthhist.classifier import load_classifier

    out = tmp_path / "res" / "c.csv"
    proc = script("concordance.py", "--network", models["net"], "--classifier", models["clf"], "--out", out,
                  "--seeds", "0-7", "--batch", 3, "--device", "cpu")
    df = pd.read_csv(out)
    assert list(df.columns) == ["seed", "pred_start", "pred_end", "concordance"] and df["seed"].tolist() == SEEDS
    assert df["concordance"].tolist() == concordance(df["pred_start"], df["pred_end"], TH).tolist()
    assert set(df["concordance"]) == {"strong", "weak", "none"}
    # same numbers as the GAN -> crop/resize -> classifier path done here by hand
    clf = load_classifier(models["clf"])
    bridge = Bridge(32, 400.0, 16, 302.0)
    z = z_from_seeds(SEEDS, 32)
    with torch.no_grad():
        for col, k in (("pred_start", 0), ("pred_end", 1)):
            want = clf.predict(bridge(models["G"](z, onehot(k, 2, 8))))[:, 1]
            assert np.allclose(df[col], want, atol=1e-3)
    n = (df["concordance"] == "strong").sum()
    assert f"strong: {100 * n / 8:.1f}% ({n}/8 seeds)" in proc.stdout
    assert "outcome_idx 1; thresholds low 0.25, mid 0.5, high 0.75" in proc.stderr
    assert "upsampled" not in proc.stderr                # 12.5 um/px GAN -> 18.9 um/px classifier: downsampled


@pytest.mark.slow
def test_concordance_warns_when_gan_images_are_upsampled(script, models, tmp_path):
    """A 32 px / 400 um GAN (12.5 um/px) read by a 32 px / 100 um classifier (3.1 um/px): one warning line."""
    from explain_fixtures import write_classifier

    fine = write_classifier(tmp_path / "fine", 32, 100.0)
    proc = script("concordance.py", "--network", models["net"], "--classifier", fine, "--out", tmp_path / "c.csv",
                  "--seeds", "0-1", "--device", "cpu")
    lines = [ln for ln in proc.stderr.splitlines() if "upsampled" in ln]
    assert len(lines) == 1 and "12.5 um/px" in lines[0] and "3.12 um/px" in lines[0] and "upsampled 4x" in lines[0]
    assert len(pd.read_csv(tmp_path / "c.csv")) == 2


@pytest.mark.slow
def test_concordance_script_linear_defaults(script, models, tmp_path):
    proc = script("concordance.py", "--network", models["net"], "--classifier", models["linear"],
                  "--out", tmp_path / "c.csv", "--seeds", "0-7", "--batch", 8)
    assert "outcome_idx 0; thresholds low -0.5, mid 0, high 0.5" in proc.stderr
    df = pd.read_csv(tmp_path / "c.csv")
    assert df["concordance"].tolist() == concordance(df["pred_start"], df["pred_end"], (-0.5, 0, 0.5)).tolist()


@pytest.mark.slow
@pytest.mark.parametrize("net, args, msg", [
    ("bare", (), "pass --gan-um"),
    ("net", ("--gan-um", 200), "larger than the GAN tile"),
    ("net", ("--start", 2), "class 2 is out of range"),
    ("net", ("--seeds", "0,4294967296"), "seed 4294967296 is out of range"),
    ("net", ("--outcome_idx", 2), "--outcome_idx 2 is out of range"),
    ("uncond", (), "unconditional"),
])
def test_concordance_bad_input(script, models, tmp_path, net, args, msg):
    proc = script("concordance.py", "--network", models[net], "--classifier", models["clf"], "--out",
                  tmp_path / "c.csv", "--seeds", "0", *args, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("Error:") and msg in last and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_concordance_paper_thresholds_on_a_probability_model(models, tmp_path):
    from test_interpolate_scripts import _run_quiet_env

    out = tmp_path / "results" / "c.csv"
    proc = _run_quiet_env(["concordance.py", "--network", models["net"], "--classifier", models["clf"], "--out", out,
                           "--seeds", "0-7", "--outcome-idx", 1, "--thresh_low=-0.5", "--thresh-mid", 0,
                           "--thresh_high", 0.5, "--start", "classA", "--end", "CLASSB"])
    assert proc.returncode == 0, proc.stderr
    assert "threshold low -0.5 outside the classifier's output range [0, 1]" in proc.stderr
    assert "absl::InitializeLog" not in proc.stderr and "cpu_feature_guard" not in proc.stderr
    assert "concordance: 8/8 seeds" in proc.stderr and "concordance: 8/8 seeds" in (out.parent / "c.log").read_text()
    assert len(pd.read_csv(out)) == 8


def test_concordance_that_never_starts_leaves_nothing(script, tmp_path):
    out = tmp_path / "results" / "concordance.csv"
    for bad in (("--seeds", "0-x"), ("--trunc", "inf"), ("--thresh_low", "nan"), ("--network", tmp_path / "no.pkl")):
        proc = script("concordance.py", "--out", out, *bad, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and lines[-1].startswith("Error:") and "Traceback" not in proc.stderr, proc.stderr
        assert [x for x in lines if not x.startswith("Using the bundled demo")] == lines[-1:]
        assert not (tmp_path / "results").exists()
