"""Run folder: snapshot names that never collide, swaps that survive a kill, reals.png, progress bar, metrics hook."""

import io
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from gan_train_fixtures import TINY, make_project, one_thread  # noqa: F401
from synthhist.gan.train import rundir

pytestmark = pytest.mark.usefixtures("one_thread")

SHORT = ["--kimg", "0.016", "--tick", "0.008", "--snap", "1", *TINY]


def test_snapshot_names_are_unique_and_sort_in_training_order():
    nimgs = [320, 480, 1000, 1008, 4000, 12000, 12320, 999999000]
    names = [rundir.snapshot_name(n) for n in nimgs]
    assert names[:5] == ["network-snapshot-000000.320", "network-snapshot-000000.480", "network-snapshot-000001",
                         "network-snapshot-000001.008", "network-snapshot-000004"]
    assert len(set(names)) == len(names) and sorted(names) == names


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread):
    """A run with snapshots at 0.008 and 0.016 kimg (both inside kimg 0)."""
    from testkit import run_script

    p = make_project(tmp_path_factory.mktemp("rundir"))
    run_script("train_gan.py", "--exp", p.config, "--outdir", p.root, *SHORT)
    return p


def _copy(p, tmp_path):
    shutil.copytree(p.root, tmp_path / "project")
    return tmp_path / "project", tmp_path / "project" / p.config.name


def test_fractional_snapshots_all_kept_and_reals_written(run):
    d, = [x for x in run.gan_dir.iterdir() if x.is_dir()]
    assert [s.name for s in rundir.list_snapshots(d)] == ["network-snapshot-000000.008", "network-snapshot-000000.016"]
    assert [rundir.read_state(s)["cur_nimg"] for s in rundir.list_snapshots(d)] == [8, 16]
    assert (d / "fakes000000.008.png").is_file() and (d / "fakes000000.016.png").is_file()
    reals = np.asarray(Image.open(d / "reals.png"))
    assert reals.shape == (2 * 16, 8 * 16, 3)  # one row of 8 tiles per class
    blue, red = reals[:16].reshape(-1, 3).mean(0), reals[16:].reshape(-1, 3).mean(0)
    assert blue[2] > blue[0] + 60 and red[0] > red[2] + 60  # row k holds class k's tiles


def _kill_between_renames(run_dir, snap):
    """Rewrite snap in a child process that dies (os._exit, no cleanup) between the swap's two renames."""
    code = f"""
import os, sys
from pathlib import Path
from synthhist.gan import load_network
from synthhist.gan.train import rundir
snap = Path({str(snap)!r})
net = load_network(snap, device="cpu", training=True)
real = os.replace
def replace(a, b):
    if Path(b) == snap:  # the second rename (new copy -> snap); the first moved snap aside
        os._exit(9)
    real(a, b)
rundir.os.replace = replace
state = rundir.read_state(snap)
rundir.save_snapshot(Path({str(run_dir)!r}), net.G, net.G_train, net.D, net.augment_p, state, net.class_names,
                     16, 100.0, extra={{"cur_nimg": state["cur_nimg"]}})
"""
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr


def test_kill_between_swap_renames_is_recovered_at_resume(run, tmp_path, script):
    root, config = _copy(run, tmp_path)
    d = root / "gan" / "00000-TINY"
    snap = d / "network-snapshot-000000.016"
    _kill_between_renames(d, snap)
    assert not snap.exists()  # both copies hidden under temporary names
    assert sorted(p.name.split(".tmp")[0].split(".old")[0] for p in d.glob(".network-snapshot-*")) == \
        [".network-snapshot-000000.016"] * 2
    out = script("train_gan.py", "--exp", config, "--outdir", root, *SHORT, "--resume", "latest", "--kimg", "0.024")
    assert "recovered network-snapshot-000000.016" in out.stderr and "kimg 0.016" in out.stderr
    assert not list(d.glob(".*"))
    names = [s.name for s in rundir.list_snapshots(d)]
    assert names[-2:] == ["network-snapshot-000000.016", "network-snapshot-000000.024"]


def test_recover_swaps_prefers_the_complete_new_copy(tmp_path):
    def snapshot(path, tag):
        path.mkdir()
        (path / "network.json").write_text(tag)
        (path / rundir.STATE_FILE).write_text(tag)

    snapshot(tmp_path / ".network-snapshot-000001.old7", "old")
    snapshot(tmp_path / ".network-snapshot-000001.tmp7", "new")
    snapshot(tmp_path / ".network-snapshot-000002.old7", "old")
    (tmp_path / ".network-snapshot-000002.tmp7").mkdir()  # a cut write: the old copy goes back
    snapshot(tmp_path / "network-snapshot-000003", "new")
    snapshot(tmp_path / ".network-snapshot-000003.old7", "old")  # swap done, removal cut: nothing to do
    restored = rundir.recover_swaps(tmp_path)
    assert [p.name for p in restored] == ["network-snapshot-000001", "network-snapshot-000002"]
    for n, tag in ((1, "new"), (2, "old"), (3, "new")):
        assert (tmp_path / f"network-snapshot-00000{n}" / "network.json").read_text() == tag
    rundir.clean_partial(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"network-snapshot-00000{n}" for n in (1, 2, 3)]


def test_interrupt_in_swap_puts_the_old_copy_back(tmp_path, monkeypatch):
    final, tmp = tmp_path / "network-snapshot-000001", tmp_path / ".network-snapshot-000001.tmp1"
    final.mkdir()
    tmp.mkdir()
    real, calls = os.replace, []

    def replace(a, b):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(a, b)

    monkeypatch.setattr(rundir.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        rundir._swap_in(tmp, final)
    assert final.is_dir()


def test_progress_bar_rounds_kimg():
    from synthhist.gan.train.loop import progress_bar

    out = io.StringIO()
    bar = progress_bar(20000, 0, True, file=out)
    for _ in range(18):
        bar.update(8)
    bar.refresh()
    bar.close()
    text = out.getvalue()
    assert "0.144/20 kimg" in text and "0.14400000000000002" not in text


def test_metrics_hook_is_checked_before_training():
    from synthhist.errors import UserError
    from synthhist.gan.train.entry import _metrics_hook

    assert _metrics_hook(None, "none") is None
    calls = []
    hook = _metrics_hook(lambda names: (lambda *a: calls.append((names, a))), "fid50k_full, kid50k_full")
    hook("run", "snap", "cpu")
    assert calls == [(["fid50k_full", "kid50k_full"], ("run", "snap", "cpu"))]
    with pytest.raises(UserError):
        _metrics_hook(None, "fid50k_full")


def test_training_metrics_refuses_unknown_and_fd_clf_and_names_the_download(tmp_path, monkeypatch):
    from synthhist.errors import UserError
    from synthhist.metrics.report import training_metrics

    monkeypatch.setenv("SYNTHHIST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYNTHHIST_INCEPTION_URL", "http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth")
    for_names = training_metrics(types.SimpleNamespace(tfrecord_dir=tmp_path, annotations=None),
                                 types.SimpleNamespace(outcome="y"))
    with pytest.raises(UserError, match="unknown metric"):
        for_names(["fid5k"])
    with pytest.raises(UserError, match="--metrics-classifier"):
        for_names(["fd_clf"])
    with pytest.raises(UserError, match="put it at"):
        for_names(["fid50k_full"])

def test_config_gpus_gives_the_matching_torchrun_line(tmp_path, script):
    p = make_project(tmp_path, gan_kwargs={"gpus": 4})
    out = script("train_gan.py", "--exp", p.config, "--outdir", p.root, *SHORT, "--dry-run")
    assert "configured for 4 GPU(s)" in out.stderr and "--nproc_per_node=4" in out.stderr


@pytest.mark.slow
def test_metrics_at_every_snapshot(tmp_path):
    """train_gan.py --metrics kid50k_full,fd_clf: one line per snapshot in metric-<name>.jsonl (stand-in Inception)."""
    from explain_fixtures import write_classifier
    from metrics_fixtures import WeightsServer, run_calc_metrics, standin_env, standin_weights

    p = make_project(tmp_path / "p")
    write_classifier(tmp_path / "clf", 16, 50.0)
    weights = standin_weights()
    with WeightsServer({"standin.pth": weights}) as srv:
        env = standin_env(tmp_path / "cache", f"{srv.url}/standin.pth", weights)
        proc = run_calc_metrics("--exp", p.config, "--outdir", p.root, *SHORT, "--metrics", "kid50k_full,fd_clf",
                                "--metrics-classifier", tmp_path / "clf", "--metrics-num", 16, env=env,
                                standin=True, script="train_gan.py")
    assert proc.returncode == 0, proc.stderr
    d, = [x for x in p.gan_dir.iterdir() if x.is_dir()]
    for name in ("kid50k_full", "fd_clf"):
        lines = [json.loads(s) for s in (d / f"metric-{name}.jsonl").read_text().splitlines()]
        assert [x["snapshot_pkl"] for x in lines] == ["network-snapshot-000000.008", "network-snapshot-000000.016"]
        assert all(np.isfinite(v) for x in lines for v in x["results"].values())
