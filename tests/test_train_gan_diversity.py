"""The mode-seeking hinge (gan_kwargs 'diversity', docs/stylegan2.md §2.6): off by default, on it spreads G over z."""

import pytest
import torch

from synthhist.config import load_experiment
from synthhist.errors import UserError
from synthhist.gan import Generator
from synthhist.gan.train.loss import StyleGAN2Loss
from synthhist.gan.train.options import TrainOptions, resolve_options, validate

RES = 16


def _collapsed_generator() -> Generator:
    """A tiny G whose mapping all but ignores z: every seed of a class gives nearly one image."""
    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, c_dim=2, img_resolution=RES, img_channels=3, channel_base=256, channel_max=16,
                  mapping_kwargs={"num_layers": 2}).train()
    with torch.no_grad():
        G.mapping.fc0.weight[:, :8] *= 1e-5      # the first layer's z inputs
    return G.requires_grad_(True)


def _reals() -> tuple[torch.Tensor, torch.Tensor]:
    """8 real tiles, 4 per class, each a different random pattern."""
    g = torch.Generator().manual_seed(1)
    return torch.rand(8, 3, RES, RES, generator=g) * 2 - 1, torch.eye(2)[torch.tensor([0, 1] * 4)]


def test_default_is_the_papers_loss():
    assert TrainOptions().diversity == 0
    assert StyleGAN2Loss(_collapsed_generator(), None).diversity_weight == 0


def test_ratios_see_a_collapsed_generator_and_the_hinge_spreads_it():
    """Collapsed G: both ratios near 0 (a pair shares its noise); Adam on the hinge alone raises both."""
    G = _collapsed_generator()
    loss = StyleGAN2Loss(G, None, diversity_weight=1.0)
    real, real_c = _reals()
    z, c = torch.randn(8, 8), torch.eye(2)[torch.tensor([0, 0, 1, 1] * 2)]

    def ratios():
        torch.manual_seed(2)  # the same pairs each time
        return loss.diversity_ratios(real, real_c, *loss.run_G_paired(z, c)[:2])

    before = [r.item() for r in ratios()]
    assert max(before) < 1e-3
    opt = torch.optim.Adam(G.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        sum(torch.relu(1 - r) for r in ratios()).backward()
        opt.step()
    after = [r.item() for r in ratios()]
    assert min(after) > 100 * max(before), (before, after)


def test_no_same_class_pair_of_reals_means_no_term():
    G = _collapsed_generator()
    real, _ = _reals()
    one_each = torch.eye(2)
    loss = StyleGAN2Loss(G, None, diversity_weight=1.0)
    assert loss.diversity_ratios(real[:2], one_each, *loss.run_G_paired(torch.randn(2, 8), one_each)[:2]) == []


class _Recorder(torch.nn.Module):
    """A 'discriminator' that keeps the images and labels it scores."""

    def forward(self, img, c):
        self.seen = img.detach(), c
        return img.mean((1, 2, 3))[:, None]


def test_d_scores_the_pairs_and_a_pair_shares_its_noise():
    """With the hinge on, G's main phase shows D the pairs it measures; noise strong, z ignored -> a == b."""
    G = _collapsed_generator()
    with torch.no_grad():
        G.mapping.fc0.weight[:, :8] = 0
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(1.0)
    D, real, real_c = _Recorder(), *_reals()
    z, c = torch.randn(7, 8), torch.eye(2)[torch.tensor([0, 1, 1, 0, 1, 0, 0])]
    StyleGAN2Loss(G, D, diversity_weight=1.0).accumulate_gradients("Gmain", real, real_c, z, c, gain=1)
    img, seen_c = D.seen
    assert len(img) == 7 and torch.equal(seen_c[:3], c[:3]) and torch.equal(seen_c[3:6], c[:3])
    assert torch.equal(img[:3], img[3:6])  # z ignored, noise shared: one image per pair
    assert (img[:3] - G.synthesis(G.mapping(z[:3], c[:3]), noise_mode="random")).abs().max() > 0.01


@pytest.mark.parametrize("key", ["diversity", "mismatch"])  # the hinge and the matching-aware D term (§2.8)
def test_the_weight_keys_reach_the_options(tmp_path, key):
    (tmp_path / "a.csv").write_text("patient,slide,o\n")
    (tmp_path / "s").mkdir()
    cfg = tmp_path / "gan.json"
    cfg.write_text('{"name": "T", "kind": "gan", "annotations": "a.csv", "slides": "s", "outcome": "o", '
                   '"tile_px": 64, "tile_um": 96, "gan_kwargs": {"gamma": 0.05, "batch": 8, "gpus": 1, '
                   f'"kimg": 1, "{key}": 1.5}}}}')
    exp = load_experiment(cfg)
    assert getattr(resolve_options(exp.gan_kwargs, 64, {}), key) == 1.5
    cfg.write_text(cfg.read_text().replace("1.5", '"a lot"'))
    with pytest.raises(UserError, match=key):
        load_experiment(cfg)
    with pytest.raises(UserError, match=f"{key} -1 is negative"):
        validate(TrainOptions(res=64, gamma=0.05, **{key: -1}), 1)


class _BeyondWhite(torch.nn.Module):
    """A 'generator' whose images differ over z only above white (values > 1, shown as 255)."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def mapping(self, z, c, **kwargs):
        return z[:, None]                                            # [N, 1, z_dim]

    def synthesis(self, ws, noise_mode):
        return (2 + ws[:, :, :1, None].abs()).expand(-1, 3, RES, RES)


def test_differences_beyond_white_do_not_count():
    real, real_c = _reals()
    loss = StyleGAN2Loss(_BeyondWhite(), None)
    ratios = loss.diversity_ratios(real, real_c, *loss.run_G_paired(torch.randn(8, 8), real_c)[:2])
    assert [r.item() for r in ratios] == [0, 0]
