"""calc_metrics.py and snapshot_metrics on tiny data: a golden GAN, tiny TFRecords / images, a tiny classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clf_fixtures import texture, write_cohort
from explain_fixtures import write_classifier
from gan_fixtures import write_native
from metrics_fixtures import WeightsServer, run_calc_metrics, standin_env, standin_weights

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("metrics")
    write_cohort(d / "cohort", n_per_class=2, tiles=16, px=32)  # slides of classes coarse / fine
    write_native("g32_cond2", d / "net", tile_um=400.0)
    write_native("g16_uncond", d / "uncond", tile_um=400.0)
    write_classifier(d / "clf", 16, 302.0)
    rng = np.random.default_rng(0)
    for kind in ("coarse", "fine"):
        (d / "images" / kind).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(texture(kind, 32, 32, rng)).save(d / "images" / kind / f"{i}.png")
    (d / "empty").mkdir()
    return d


def _env(d: Path, name: str) -> dict:
    return standin_env(d / f"cache-{name}", "http://127.0.0.1:9/standin.pth", standin_weights())


def test_fd_clf_tfrecords_per_class_and_cache(d):
    env = _env(d, "fdclf")
    args = ["--network", d / "net", "--data", d / "cohort" / "tfrecords", "--annotations", d / "cohort" / "labels.csv",
            "--outcome", "kind", "--metrics", "fd_clf", "--classifier", d / "clf", "--num", 40,
            "--out", d / "fd.jsonl", "--device", "cpu"]
    first = run_calc_metrics(*args, env=env)
    assert first.returncode == 0, first.stderr
    second = run_calc_metrics(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert "from the cache" not in first.stderr and second.stderr.count("from the cache") == 3  # overall + 2 classes
    lines = [json.loads(s) for s in (d / "fd.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["results"] == lines[1]["results"]  # cached reals, same seeds
    res = lines[0]["results"]
    assert set(res) == {"fd_clf", "fd_clf/coarse", "fd_clf/fine"}
    assert all(np.isfinite(v) and v >= 0 for v in res.values())
    assert lines[0]["metric"] == "fd_clf" and lines[0]["num_gen"] == 40 and lines[0]["num_real"] == 40
    assert {"total_time", "snapshot_pkl", "timestamp"} <= set(lines[0])
    assert "fd_clf/coarse" in first.stdout  # the printed table


def test_inception_metrics_on_images_with_standin_in_cache(d):
    env = _env(d, "inception")
    (d / "cache-inception" / "metrics").mkdir(parents=True)
    (d / "cache-inception" / "metrics" / "standin.pth").write_bytes(standin_weights())
    proc = run_calc_metrics("--network", d / "net", "--data", d / "images", "--num", 30, "--device", "cpu",
                            "--metrics", "fid50k_full,kid50k_full,pr50k3_full", env=env, standin=True)
    assert proc.returncode == 0, proc.stderr
    assert "only 24 real tiles" in proc.stderr  # fewer reals than --num: said, and all of them used
    rows = dict(line.split() for line in proc.stdout.splitlines()[1:])
    for cls in ("", "/coarse", "/fine"):
        assert float(rows[f"fid50k_full{cls}"]) > 0
        assert 0 <= float(rows[f"pr50k3_full_precision{cls}"]) <= 1
        assert 0 <= float(rows[f"pr50k3_full_recall{cls}"]) <= 1
        assert f"kid50k_full{cls}" in rows


def test_inception_offline_says_what_to_download(d):
    env = _env(d, "offline")
    proc = run_calc_metrics("--network", d / "net", "--data", d / "images", "--num", 10, "--metrics", "fid50k_full",
                            env=env)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("Error: cannot download the Inception-v3 weights")
    assert f"download http://127.0.0.1:9/standin.pth and put it at {d / 'cache-offline' / 'metrics' / 'standin.pth'}" in err


@pytest.mark.parametrize("args, message", [
    (["--data", "{d}/empty", "--metrics", "fd_clf", "--classifier", "{d}/clf"], "no images"),
    (["--data", "{d}/images", "--metrics", "fid"], "unknown metric 'fid'"),
    (["--data", "{d}/images", "--metrics", "fd_clf"], "fd_clf needs a histology classifier"),
])
def test_bad_input_one_line(d, args, message):
    proc = run_calc_metrics("--network", d / "net", *[a.format(d=d) for a in args], env=_env(d, "bad"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]


def test_resolution_mismatch_resizes_and_says_so(d):
    proc = run_calc_metrics("--network", d / "uncond", "--data", d / "images", "--metrics", "fd_clf", "--classifier",
                            d / "clf", "--num", 8, "--device", "cpu", env=_env(d, "res"))
    assert proc.returncode == 0, proc.stderr
    assert "the real tiles are 32 px and the network's images 16 px: resizing the real tiles to 16 px" in proc.stderr
    rows = dict(line.split() for line in proc.stdout.splitlines()[1:])
    assert list(rows) == ["fd_clf"]  # unconditional network: overall only


def test_snapshot_metrics_appends_jsonl(d, tmp_path, monkeypatch):
    from synthhist.metrics.report import snapshot_metrics

    monkeypatch.setenv("SYNTHHIST_CACHE", str(tmp_path / "cache"))
    kw = dict(data=d / "cohort" / "tfrecords", annotations=d / "cohort" / "labels.csv", outcome="kind",
              classifier=str(d / "clf"), device="cpu", num=16)
    snapshot_metrics(tmp_path / "run", d / "net", ["fd_clf"], **kw)
    snapshot_metrics(tmp_path / "run", d / "net", ["fd_clf"], **kw)
    lines = [json.loads(s) for s in (tmp_path / "run" / "metric-fd_clf.jsonl").read_text().splitlines()]
    assert [x["snapshot_pkl"] for x in lines] == ["net", "net"] and lines[0]["results"] == lines[1]["results"]
    assert len(list((tmp_path / "cache" / "metrics" / "reals").glob("*.npy"))) == 1


def test_damaged_image_one_line(d, tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.fromarray(texture("fine", 32, 32, np.random.default_rng(i))).save(tmp_path / "imgs" / f"{i}.png")
    (tmp_path / "imgs" / "3.png").write_bytes(b"\x89PNG not really")
    proc = run_calc_metrics("--network", d / "uncond", "--data", tmp_path / "imgs", "--metrics", "fd_clf",
                            "--classifier", d / "clf", "--num", 4, "--device", "cpu", env=_env(d, "damaged"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "3.png: cannot read a tile" in proc.stderr.strip().splitlines()[-1]
