"""The training schedule the golden train-step test leaves out: optimizer settings, EMA, style mixing, path length.

Reference values from docs/stylegan2.md §2.1-2.2 (the `--cfg=stylegan2` trainer).
"""

import math

import pytest
import torch

from synthhist.gan.train.distributed import Dist
from synthhist.gan.train.loop import Start, ema_beta, setup_state
from synthhist.gan.train.loss import StyleGAN2Loss
from synthhist.gan.train.options import TrainOptions, validate


@pytest.fixture(scope="module")
def state():
    opts = TrainOptions(res=8, batch=8, gamma=0.05, cbase=64, cmax=16, map_layers=2, fp32=True, aug="noaug")
    validate(opts, 1)
    return opts, setup_state(opts, 2, Dist(0, 1, torch.device("cpu")), Start())


def test_lazy_regularisation_adam(state):
    """lr * c and betas ** c with c = I / (I + 1): G (I = 4) 0.0016 / 0.99199, D (I = 16) 0.0018824 / 0.99059."""
    _, ts = state
    for name, lr, beta2 in (("G", 0.0016, 0.99199), ("D", 0.0018824, 0.99059)):
        group, = ts.opt[name].param_groups
        assert group["lr"] == pytest.approx(lr, abs=1e-7)
        assert group["betas"][0] == 0 and group["betas"][1] == pytest.approx(beta2, abs=1e-5)
        assert group["eps"] == 1e-8


def test_networks_and_loss_settings(state):
    """Mapping lr multiplier 0.01 and w_avg beta 0.998; D mbstd group 4; loss: mixing 0.9, pl 2 / 2 / 0.01."""
    opts, ts = state
    fc0 = ts.G.mapping.fc0
    assert fc0.weight_gain == pytest.approx(0.01 / math.sqrt(fc0.in_features)) and fc0.bias_gain == 0.01
    assert ts.G.mapping.w_avg_beta == 0.998 and ts.D.mapping.fc0.bias_gain == 0.01
    assert ts.D.b4.mbstd.group_size == 4
    loss = ts.loss
    assert (loss.r1_gamma, loss.style_mixing_prob, loss.pl_weight, loss.pl_batch_shrink, loss.pl_decay) == (
        0.05, 0.9, 2.0, 2, 0.01)
    assert ts.augment_pipe is None and ts.ema_rampup == 0.05 and opts.ema_kimg == 2.5  # batch * 10 / 32


def test_ema_beta():
    """beta = 0.5 ** (batch / min(ema_kimg * 1000, rampup * cur_nimg)): 0.99778 at batch 32, 0 at the start."""
    assert ema_beta(32, 10, 10**7, 0.05) == pytest.approx(0.99778, abs=1e-5)
    assert ema_beta(8, 2.5, 0, 0.05) == 0  # the first iteration copies G
    assert ema_beta(8, 2.5, 12000, 0.05) == pytest.approx(0.5 ** (8 / 600))  # ramp-up still caps the half-life
    assert ema_beta(8, 2.5, 12000, None) == pytest.approx(0.5 ** (8 / 2500))


class _Mapping(torch.nn.Module):
    """ws of call k are all k (so a mixed ws shows its cutoff)."""

    def __init__(self, num_ws):
        super().__init__()
        self.num_ws, self.calls = num_ws, 0
        self.dummy = torch.nn.Parameter(torch.zeros([]))

    def forward(self, z, c, update_emas=False):
        self.calls += 1
        return torch.full([z.shape[0], self.num_ws, 1], float(self.calls))


class _G(torch.nn.Module):
    def __init__(self, num_ws):
        super().__init__()
        self.mapping = _Mapping(num_ws)
        self.synthesis = lambda ws, noise_mode: ws


def test_style_mixing_probability_and_cutoffs():
    """With p 0.9 the ws from index cutoff ~ U{1..num_ws-1} on come from a second latent, one cutoff per batch."""
    torch.manual_seed(0)
    num_ws, n = 8, 4000
    loss = StyleGAN2Loss(_G(num_ws), None)
    cutoffs = []
    for _ in range(n):
        _, ws = loss.run_G(torch.zeros(3, 1), torch.zeros(3, 2))
        first = ws[0, 0, 0]
        assert torch.equal(ws, ws[:1].expand_as(ws))  # the same cutoff for every sample
        cutoffs.append(int((ws[0, :, 0] == first).sum()))
    mixed = [k for k in cutoffs if k < num_ws]
    assert abs(len(mixed) / n - 0.9) < 0.02
    assert set(mixed) == set(range(1, num_ws))
    counts = torch.bincount(torch.tensor(mixed), minlength=num_ws)[1:].float()
    assert (counts / counts.mean() - 1).abs().max() < 0.15  # uniform


def test_path_length_batch_and_mean():
    """Greg runs G on batch // 2 latents, pl_mean <- lerp(pl_mean, mean length, 0.01), penalty 2 (length - mean)^2."""
    from synthhist.gan import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=2, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={"num_layers": 1},
                  channel_base=32, channel_max=8, num_fp16_res=0, conv_clamp=None).train().requires_grad_(True)
    loss = StyleGAN2Loss(G, None, style_mixing_prob=0)
    seen = []
    run_G = loss.run_G
    loss.run_G = lambda z, c, update_emas=False: (seen.append(z.shape[0]), run_G(z, c))[1]
    z, c = torch.randn(8, 8), torch.eye(2)[torch.arange(8) % 2]
    stats = loss.accumulate_gradients("Greg", None, None, z, c, gain=4)
    assert seen == [4]
    first = float(loss.pl_mean)
    assert first > 0
    # The same latents and noise again: the mean moves 1% of the way to the (same) batch mean length.
    torch.manual_seed(1)
    img, ws = run_G(z[:4], c[:4])
    noise = torch.randn_like(img) / math.sqrt(64)
    lengths = torch.autograd.grad((img * noise).sum(), ws)[0].square().sum(2).mean(1).sqrt()
    torch.manual_seed(1)
    loss.run_G = run_G
    stats = loss.accumulate_gradients("Greg", None, None, z, c, gain=4)
    expected = first + 0.01 * (float(lengths.mean()) - first)
    assert float(loss.pl_mean) == pytest.approx(expected, rel=1e-5)
    assert stats["Loss/pl_penalty"] == pytest.approx(float((lengths - expected).square().mean()), rel=1e-4)
