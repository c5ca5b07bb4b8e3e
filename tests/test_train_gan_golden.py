"""One training step against the reference: Gmain/Dmain/Dreg gradients of StyleGAN2Loss (tests/data/golden_train)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synthhist.gan import Discriminator, Generator
from synthhist.gan.train.loss import StyleGAN2Loss
# Beside this file, not via `tests.conftest`: a site-packages `tests` package (torch-fidelity ships one) shadows it.
GOLDEN_TRAIN = Path(__file__).resolve().parent / "data" / "golden_train"
NAME = "train_step_g32_cond2"


@pytest.mark.parametrize("phase", ["Gmain", "Dmain", "Dreg"])
def test_gradients_match_reference(phase):
    arrays = dict(np.load(GOLDEN_TRAIN / f"{NAME}.npz"))
    cfg = json.loads((GOLDEN_TRAIN / f"{NAME}.json").read_text())
    assert phase in cfg["phases"] and cfg["augment_pipe"] is None
    G, D = Generator(**cfg["G_kwargs"]).train(), Discriminator(**cfg["D_kwargs"]).train()
    for prefix, net in (("G/", G), ("D/", D)):
        net.load_state_dict({k[2:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith(prefix)})
        net.requires_grad_(False)
    loss = StyleGAN2Loss(G, D, None, **cfg["loss"])
    module = G if phase == "Gmain" else D
    module.requires_grad_(True)
    real_img, real_c, gen_z, gen_c = (torch.from_numpy(arrays[f"in/{k}"])
                                      for k in ("real_img", "real_c", "gen_z", "gen_c"))
    loss.accumulate_gradients(phase, real_img, real_c, gen_z, gen_c, gain=cfg["gain"])
    expected = {k.split("/", 2)[2]: v for k, v in arrays.items() if k.startswith(f"grad/{phase}/")}
    got = {k: p.grad for k, p in module.named_parameters() if p.grad is not None}
    got = {k: v for k, v in got.items() if not k.endswith("noise_strength")}  # random, left out of the data
    assert set(expected) == set(got), sorted(set(expected) ^ set(got))[:3]  # the same params get gradients
    for k, v in expected.items():
        np.testing.assert_allclose(got[k].numpy(), v, atol=1e-5, rtol=0, err_msg=k)
    worst = max(float(np.abs(got[k].numpy() - v).max()) for k, v in expected.items())
    assert worst < 1e-6, worst  # the reference reproduces to ~1e-7


def test_step_skips_params_without_gradient():
    """As the reference, Adam leaves alone a param its phase gave no gradient (its moments do not decay)."""
    from synthhist.gan.train.distributed import Dist
    from synthhist.gan.train.loop import _step

    m = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(m.parameters(), lr=0.1, betas=(0.0, 0.99))
    m.weight.grad = torch.ones_like(m.weight)
    _step(m, opt, Dist(0, 1, torch.device("cpu")))
    assert m.weight in opt.state and m.bias not in opt.state
