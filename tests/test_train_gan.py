"""train_gan.py on tiny TFRecord projects: snapshot loads, resume continues exactly, bad input is refused."""

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from gan_train_fixtures import TINY, make_project, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

# ~4 iterations of batch 4 at 16 px with tiny networks.
SHORT = ["--kimg", "0.016", "--tick", "0.008", "--snap", "1", *TINY]


def _train(script, p, *args, check=True):
    return script("train_gan.py", "--exp", p.config, "--outdir", p.root, *SHORT, *args, check=check)


def _runs(p):
    return sorted(d for d in p.gan_dir.iterdir() if d.is_dir())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    """One short training run (2 ticks, a snapshot each), shared read-only; tests copy it."""
    from testkit import run_script

    p = make_project(tmp_path_factory.mktemp("trained"))
    _train(run_script, p, "--aug", "fixed", "--p", "0.3")
    return p


def _copy(trained, tmp_path):
    shutil.copytree(trained.root, tmp_path / "project")
    return SimpleNamespace(**{
        k: (tmp_path / "project" / v.relative_to(trained.root)) if hasattr(v, "relative_to") else v
        for k, v in vars(trained).items()})


def test_trains_and_writes_a_loadable_snapshot(trained):
    from synthhist.gan import load_network

    p = trained
    run, = _runs(p)
    assert run.name == "00000-TINY"
    opts = json.loads((run / "training_options.json").read_text())
    assert opts["batch"] == 4 and opts["gamma"] == 0.1 and opts["map"] == 2 and opts["res"] == 16
    assert opts["ema_kimg"] == 4 * 10 / 32
    assert opts["slideflow_kwargs"]["outcome_labels"] == {"0": "blue", "1": "red"}
    assert opts["slideflow_kwargs"]["tile_px"] == 16 and opts["slideflow_kwargs"]["outcome_label_headers"] == "colour"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in log] == [0.008, 0.016]
    assert all("s_per_kimg" in r and "augment_p" in r and "Loss/G/loss" in r for r in log)
    assert (run / "fakes000000.016.png").is_file()
    snap = run / "network-snapshot-000000.016"
    net = load_network(snap, device="cpu", training=True)
    assert net.class_names == ["blue", "red"] and net.tile_px == 16 and net.tile_um == 100
    assert net.G_train is not None and net.D is not None and net.augment_p is not None
    img = net.G(torch.randn(2, net.G.z_dim), torch.eye(2))
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()
    assert not list(run.glob(".*"))  # no temporary leftovers


def test_generate_py_reads_the_snapshot(trained, tmp_path, script):
    run, = _runs(trained)
    script("generate.py", "--network", run / "network-snapshot-000000.016", "--seeds", "0-1", "--class", "1",
           "--outdir", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["seed0000.png", "seed0001.png"]


def test_resume_latest_continues_with_identical_state(trained, tmp_path, script):
    from synthhist.gan.train.distributed import Dist
    from synthhist.gan.train.loop import Start, setup_state
    from synthhist.gan.train.options import resolve_options, validate
    from synthhist.gan.train.rundir import list_snapshots, read_state

    p = _copy(trained, tmp_path)
    run, = _runs(p)
    snap = list_snapshots(run)[-1]
    state = read_state(snap)
    assert state["cur_nimg"] == 16 and state["batch_idx"] == 4

    # The state a resumed run starts from equals the snapshot exactly.
    opts = resolve_options(p.cfg["gan_kwargs"], 16, dict(cbase=256, cmax=32, map_layers=2, fp32=True, aug="fixed", augment_p=0.3))
    validate(opts, 1)
    ts = setup_state(opts, 2, Dist(0, 1, torch.device("cpu")), Start("snapshot", snap, state))
    from synthhist.gan import load_network
    net = load_network(snap, device="cpu", training=True)
    for a, b in ((ts.G, net.G_train), (ts.D, net.D), (ts.G_ema, net.G)):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), ka
    assert ts.cur_nimg == 16 and ts.batch_idx == 4
    for name in ("G", "D"):
        sa, sb = ts.opt[name].state_dict()["state"], state[f"opt_{name}"]["state"]
        assert len(sa) == len(sb) > 0
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert torch.equal(ts.loss.pl_mean, state["pl_mean"])

    # Continue in the same folder to 0.032 kimg: the log goes on from the saved kimg.
    out = _train(script, p, "--aug", "fixed", "--p", "0.3", "--resume", "latest", "--kimg", "0.032")
    assert "kimg 0.016" in out.stderr
    assert _runs(p) == [run]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in log] == [0.008, 0.016, 0.024, 0.032]
    assert [r["tick"] for r in log] == [1, 2, 3, 4]  # the tick counter continues
    assert read_state(list_snapshots(run)[-1])["cur_nimg"] == 32


def test_killed_run_resumes_from_last_complete_snapshot(trained, tmp_path, script):
    p = _copy(trained, tmp_path)
    run, = _runs(p)
    # A kill during the next snapshot leaves a temp folder and a cut log line: both are ignored/cleaned.
    (run / ".network-snapshot-000000.tmp123").mkdir()
    (run / ".network-snapshot-000000.tmp123" / "network.json").write_text("{")
    with open(run / "log.jsonl", "a") as f:
        f.write('{"kimg": 0.02')
    _train(script, p, "--aug", "fixed", "--p", "0.3", "--resume", "latest", "--kimg", "0.024")
    assert not list(run.glob(".*"))
    kimgs = [json.loads(line)["kimg"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert kimgs == [0.008, 0.016, 0.024]


def _fails(proc, *words):
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("Error:") and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize("case, words", [
    ("single_class", ["single class"]),
    ("class_without_tiles", ["red", "no tiles"]),
    ("no_tiles", ["no tiles"]),
    ("wrong_size", ["wrong size", "32 px"]),
])
def test_bad_datasets(tmp_path, script, case, words):
    kwargs = {"single_class": dict(slides_per_class={"blue": 2}),
              "class_without_tiles": dict(no_tiles=("red",)),
              "wrong_size": dict(px=32, tile_px=16)}.get(case, {})
    p = make_project(tmp_path, **kwargs)
    if case == "no_tiles":
        shutil.rmtree(p.tfrecord_dir)
        p.tfrecord_dir.mkdir()
    proc = _train(script, p, check=False)
    if case != "no_tiles":
        _fails(proc, *words)
    else:
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert not p.gan_dir.exists() or not any(p.gan_dir.iterdir())


def test_outdir_of_another_experiment_is_refused(trained, tmp_path, script):
    p = _copy(trained, tmp_path)
    before = sorted(x.name for x in (p.gan_dir / "00000-TINY").iterdir())
    cfg = dict(p.cfg, name="OTHER", annotations=str(p.annotations))
    other = tmp_path / "other_gan.json"
    other.write_text(json.dumps(cfg))
    proc = script("train_gan.py", "--exp", other, "--outdir", p.root, *SHORT, check=False)
    _fails(proc, "OTHER")
    assert sorted(x.name for x in (p.gan_dir / "00000-TINY").iterdir()) == before
    assert _runs(p) == [p.gan_dir / "00000-TINY"]


def test_resume_from_incompatible_network_is_refused(trained, tmp_path, script):
    p = _copy(trained, tmp_path)
    run, = _runs(p)
    proc = _train(script, p, "--resume", run / "network-snapshot-000000.016", "--cmax", "64", check=False)
    _fails(proc, "cannot resume")
    proc = _train(script, p, "--resume", tmp_path / "nothing.pkl", check=False)
    _fails(proc, "not found")
    assert _runs(p) == [run]


def test_bad_options(tmp_path, script):
    p = make_project(tmp_path)
    _fails(_train(script, p, "--batch", "6", check=False), "minibatch-std")
    _fails(_train(script, p, "--batch-gpu", "3", check=False), "does not divide")
    _fails(_train(script, p, "--res", "24", check=False), "power of two")
    assert not p.gan_dir.exists() or not any(p.gan_dir.iterdir())


def test_dry_run_and_fid_option(tmp_path, script):
    p = make_project(tmp_path)
    out = _train(script, p, "--dry-run", "--metrics", "fid50k_full")
    assert '"gamma": 0.1' in out.stdout and '"metrics": "fid50k_full"' in out.stdout
    assert not any(p.gan_dir.iterdir())
    env = {"SYNTHHIST_CACHE": str(tmp_path / "cache"),
           "SYNTHHIST_INCEPTION_URL": "http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        out = _train(script, p, "--metrics", "fid50k_full", check=False)
    err = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1 and err.startswith("Error: cannot download the Inception-v3 weights") and "put it at" in err
    assert not any(p.gan_dir.iterdir())  # refused before anything is written
