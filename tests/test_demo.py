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
    """The configs of experiment/demo/train.sh (classifier: 1 epoch), next to a tiny cohort in root/data/."""
    for name in ("bundle_gan.json", "bundle_gan_mismatch.json", "bundle_gan_mismatch_low.json", "demo_classifier.json"):
        cfg = json.loads((ROOT / "experiment" / "demo" / name).read_text())
        if "hp" in cfg:
            cfg["hp"].update(epochs=[1], hidden_layer_width=8)
            cfg["train_kwargs"]["val_strategy"] = "none"
        (root / name).write_text(json.dumps(cfg))


@pytest.mark.slow
def test_demo_train_end_to_end(tmp_path):
    """make demo-train's script at the smallest scale: data -> tiles -> GAN stages 1-4 -> classifier -> explanations."""
    subprocess.run([sys.executable, "-m", "synthhist.demo.data", tmp_path / "data", "--n-per-class", "2",
                    "--size", "768"], cwd=ROOT, check=True, capture_output=True)
    assert len(list((tmp_path / "data" / "slides").glob("*.tiff"))) == 4
    demo_configs(tmp_path)
    env = dict(os.environ, SEEDS="0-3", PY=sys.executable, TF_CPP_MIN_LOG_LEVEL="3", EXP=str(tmp_path),
               DEMO_KIMG="0.2")
    proc = subprocess.run(["sh", str(ROOT / "experiment" / "demo" / "train.sh"), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=1800)
    # DEMO_KIMG 0.2 of the recipe's 356.352: stage 1 5 batches of 32, stages 2-4 one each (3-4 continue 2's count)
    ends = {s: sorted((tmp_path / "out" / s / "gan").glob("*/network-snapshot-*"))[-1].name
            for s in ("s1", "s2", "s3", "s4")}
    assert ends == {"s1": "network-snapshot-000000.160", "s2": "network-snapshot-000000.032",
                    "s3": "network-snapshot-000000.064", "s4": "network-snapshot-000000.096"}, (ends, proc.stderr)
    out = tmp_path / "out"
    assert "resuming from" in next((out / "s4" / "gan").glob("*/log.txt")).read_text()
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
    assert proc.returncode == 0, proc.stderr
    # an untrained pair may have no concordant seed: then no plot, and a line that says why
    concordant = (df["concordance"] != "none").any()
    assert (out / "interpolation_probability.png").is_file() == concordant, proc.stdout
    if not concordant:
        assert "no strong or weak seed" in proc.stdout
    assert np.isfinite(df[["pred_start", "pred_end"]].to_numpy()).all()
