"""Two CPU processes under torchrun (gloo): sharded data, all-reduced grads, identical weights, rank 0 writes."""

import json
import os
import subprocess
import sys

import pytest

from gan_train_fixtures import TINY, make_project
from testkit import ROOT


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    from synthhist.gan import load_network

    p = make_project(tmp_path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "train_gan.py"), "--exp", str(p.config), "--outdir", str(p.root),
           "--batch", "8", "--kimg", "0.032", "--tick", "0.016", "--snap", "1", *TINY]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("weights of G, D, G_ema identical on all 2 processes") == 2
    run, = [d for d in p.gan_dir.iterdir() if d.is_dir()]
    opts = json.loads((run / "training_options.json").read_text())
    assert opts["world_size"] == 2 and opts["batch_gpu"] == 4
    kimgs = [json.loads(line)["kimg"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert kimgs == [0.016, 0.032]  # one writer: no duplicated lines
    net = load_network(run / "network-snapshot-000000.032", device="cpu", training=True)
    assert net.D is not None
