"""The offline demo: README's two commands are Makefile targets, the bundled models, the pipeline end to end."""

import json
import os
import re
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from testkit import ROOT

EXPLAIN = ROOT / "experiment" / "demo" / "explain.sh"


def readme_commands() -> list[str]:
    """The commands of README.md's '## Two commands' bash block."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_readme_commands_are_make_targets():
    commands = readme_commands()
    assert commands == ["make demo", "make test"], commands
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    for cmd in commands:
        assert cmd.split()[1] in targets, f"README's '{cmd}' is not a Makefile target"


def test_bundled_models_load_and_agree():
    """`demo` names the bundled GAN and classifier; the classifier tells the GAN's two classes apart."""
    from synthhist.classifier import load_classifier
    from synthhist.explain.bridge import Bridge
    from synthhist.gan import load_network
    from synthhist.gan.latent import onehot, z_from_seeds
    from synthhist.images import to_uint8

    net = load_network("demo", device="cpu")
    clf = load_classifier("demo")
    assert net.class_names == ["gland", "spindle"] and net.c_dim == 2
    assert clf.outcome_labels == ["gland", "spindle"]
    assert clf.tile_um <= net.tile_um
    seeds = list(range(8))
    z = z_from_seeds(seeds, net.G.z_dim, torch.device("cpu"))
    preds = []
    for cls in (0, 1):
        with torch.no_grad():
            img = net.G(z, onehot(cls, 2, len(seeds), torch.device("cpu")))
        assert img.shape == (8, 3, net.tile_px, net.tile_px) and to_uint8(img).float().std() > 5
        preds.append(clf.predict(Bridge.for_classifier(net.tile_px, net.tile_um, clf)(img))[:, 1])
    gland, spindle = preds
    assert (spindle > gland).mean() >= 0.75 and spindle.mean() - gland.mean() > 0.3, (gland, spindle)


def test_scripts_default_to_demo(tmp_path, script):
    proc = script("generate.py", "--seeds", "0", "--class", "1", "--outdir", tmp_path)
    assert "Using the bundled demo network (--network demo)" in proc.stderr
    assert (tmp_path / "seed0000.png").is_file()


def demo_configs(root):
    """The demo configs (classifier: 1 epoch), next to a tiny cohort in root/data/."""
    out = []
    for name in ("demo_gan.json", "demo_classifier.json"):
        cfg = json.loads((ROOT / "experiment" / "demo" / name).read_text())
        if "hp" in cfg:
            cfg["hp"].update(epochs=[1], hidden_layer_width=8)
        (root / name).write_text(json.dumps(cfg))
        out.append(root / name)
    return out


@pytest.mark.slow
def test_demo_pipeline_end_to_end(tmp_path, script):
    """Data -> tiles -> GAN -> classifier -> explanations, at the smallest scale."""
    subprocess.run([sys.executable, "-m", "synthhist.demo.data", tmp_path / "data", "--n-per-class", "2",
                    "--size", "768"], cwd=ROOT, check=True, capture_output=True)
    assert len(list((tmp_path / "data" / "slides").glob("*.tiff"))) == 4
    gan_cfg, clf_cfg = demo_configs(tmp_path)
    project = tmp_path / "project"
    script("train_gan.py", "--exp", gan_cfg, "--outdir", project, "--workers", "1", "--kimg", "0.032",
           "--cbase", "256", "--cmax", "16", timeout=900)
    script("train_classifier.py", "--exp", clf_cfg, "--outdir", project, "--weights", "none",
           "--val-strategy", "none", "--workers", "1", timeout=900)
    snapshot = sorted((project / "gan").glob("*-DEMO/network-snapshot-*"))[-1]
    model = sorted((project / "models").glob("*-HP0"))[-1]

    env = dict(os.environ, SEEDS="0-3", PY=sys.executable, TF_CPP_MIN_LOG_LEVEL="3", OUTCOME="tissue",
               REAL=str(project / "tfrecords"), ANNOTATIONS=str(tmp_path / "data" / "labels.csv"))
    proc = subprocess.run(["sh", str(EXPLAIN), str(tmp_path / "out"), str(snapshot), str(model)], env=env,
                          capture_output=True, text=True, timeout=900)
    out = tmp_path / "out"
    assert len(list((out / "images" / "class0").glob("seed*.png"))) == 8
    assert len(list((out / "images" / "class1").glob("seed*.png"))) == 8
    assert len(list((out / "blend").glob("seed*.mp4"))) == 4 and len(list((out / "blend").glob("seed*.png"))) == 4
    assert "real tiles of" in proc.stderr  # the contact sheet's real tiles: the GAN's TFRecords
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 4 * 160 * 2 and sheet.height > 2 * 2 * 160  # 2 classes x (real | synthetic) x 2 x 4 tiles
    assert Image.open(out / "class_blend.png").width > 8 * 160  # 8 frames a strip
    frames = [f for f in imageio.get_reader(out / "blend" / "seed0000.mp4")]  # len() of an mp4 reader is inf
    assert len(frames) == 72 and frames[0].shape[0] >= 256  # 4 s at 18 fps, upscaled
    df = pd.read_csv(out / "concordance.csv")
    assert list(df["seed"]) == [0, 1, 2, 3] and set(df["concordance"]) <= {"strong", "weak", "none"}
    if (df["concordance"] != "none").any():  # an untrained pair may have no concordant seed: then no plot
        assert proc.returncode == 0, proc.stderr
        assert (out / "interpolation_probability.png").is_file()
    else:
        assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("Error: no strong or weak")
    assert np.isfinite(df[["pred_start", "pred_end"]].to_numpy()).all()
