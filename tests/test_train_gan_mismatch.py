"""The matching-aware term (gan_kwargs 'mismatch', docs/stylegan2.md §2.8): off by default; on, D scores real
tiles under a wrong label as fakes and so learns what each class looks like."""

import torch
import torch.nn.functional as F

from synthhist.gan import Discriminator, Generator
from synthhist.gan.train.loss import StyleGAN2Loss
from synthhist.gan.train.options import TrainOptions

RES = 16


def _generator() -> Generator:
    torch.manual_seed(0)
    return Generator(z_dim=8, w_dim=8, c_dim=2, img_resolution=RES, img_channels=3, channel_base=256,
                     channel_max=16, mapping_kwargs={"num_layers": 2})


def _reals(n: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """n real tiles alternating between the classes, alike in colour: class 0 vertical stripes, class 1
    horizontal ones, each at a random phase and shade."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 1] * (n // 2))
    phase, shade = torch.rand(n, 1, 1, generator=g) * 6.3, torch.rand(n, 3, 1, 1, generator=g) * 0.4 - 0.2
    stripes = torch.sin(torch.arange(RES) * 1.6 + phase)                       # [n, 1, RES] along x
    img = torch.where(labels[:, None, None] == 0, stripes.expand(n, RES, RES), stripes.transpose(1, 2).expand(n, RES, RES))
    return 0.6 * img[:, None] + shade, torch.eye(2)[labels]


def test_default_is_the_papers_loss():
    assert TrainOptions().mismatch == 0
    assert StyleGAN2Loss(_generator(), None).mismatch_weight == 0


def test_wrong_labels_are_never_the_right_one():
    two = torch.eye(2)[torch.tensor([0, 1, 1, 0])]
    assert torch.equal(StyleGAN2Loss.wrong_labels(two), two.flip(1))
    c = torch.eye(3)[torch.randint(0, 3, (600,))]
    wrong = StyleGAN2Loss.wrong_labels(c)
    assert torch.equal(wrong.sum(1), torch.ones(600)) and not (wrong * c).any()
    for k in range(3):  # each of the two other classes is drawn
        others = wrong[c[:, k] == 1].argmax(1)
        assert set(others.tolist()) == set(range(3)) - {k}


class _LinearD(torch.nn.Module):
    """A conditional 'discriminator': score = channel means . W[:, class], which also records what it scores."""

    def __init__(self):
        super().__init__()
        self.W = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.3]]))
        self.seen = []

    def forward(self, img, c):
        self.seen.append((img.detach(), c))
        return ((img.mean((2, 3)) @ self.W) * c).sum(1, keepdim=True)


def test_dmain_adds_softplus_of_real_tiles_under_the_wrong_label():
    G, (real, real_c) = _generator(), _reals()
    z, c = torch.randn(8, 8), torch.eye(2)[torch.tensor([0, 0, 1, 1] * 2)]
    grads, stats = [], []
    for weight in (0.0, 0.5):
        D = _LinearD()
        torch.manual_seed(3)
        stats.append(StyleGAN2Loss(G, D, style_mixing_prob=0, mismatch_weight=weight)
                     .accumulate_gradients("Dmain", real, real_c, z, c, gain=1))
        grads.append(D.W.grad.clone())
    assert len(D.seen) == 3 and torch.equal(D.seen[2][0], real) and torch.equal(D.seen[2][1], real_c.flip(1))
    D = _LinearD()
    F.softplus(D(real, real_c.flip(1))).mean().backward()
    assert torch.allclose(grads[1] - grads[0], 0.5 * D.W.grad, atol=1e-6)
    assert "Loss/scores/mismatch" in stats[1] and "Loss/scores/mismatch" not in stats[0]


def test_without_classes_there_is_no_term():
    G = Generator(z_dim=8, w_dim=8, c_dim=0, img_resolution=RES, img_channels=3, channel_base=256,
                  channel_max=16, mapping_kwargs={"num_layers": 2})
    D = Discriminator(c_dim=0, img_resolution=RES, img_channels=3, channel_base=256, channel_max=16)
    stats = StyleGAN2Loss(G, D, mismatch_weight=1.0).accumulate_gradients(
        "Dmain", _reals()[0], torch.zeros(8, 0), torch.randn(8, 8), torch.zeros(8, 0), gain=1)
    assert "Loss/scores/mismatch" not in stats


def _label_gap(mismatch: float) -> float:
    """Train a small D (G frozen) on Dmain alone; mean D(real, right label) - D(real, wrong label) on fresh reals."""
    G = _generator().requires_grad_(False)
    torch.manual_seed(4)
    D = Discriminator(c_dim=2, img_resolution=RES, img_channels=3, channel_base=256, channel_max=16)
    loss = StyleGAN2Loss(G, D, mismatch_weight=mismatch)
    opt = torch.optim.Adam(D.parameters(), lr=0.01, betas=(0.0, 0.99))
    for step in range(40):
        real, real_c = _reals(seed=100 + step)
        opt.zero_grad()
        loss.accumulate_gradients("Dmain", real, real_c, torch.randn(8, 8), torch.eye(2)[torch.arange(8) % 2], gain=1)
        opt.step()
    real, real_c = _reals(16, seed=7)
    with torch.no_grad():
        return (D(real, real_c) - D(real, real_c.flip(1))).mean().item()


def test_the_term_makes_d_tell_the_classes_apart():
    """Real tiles of both classes are real under either label to a D trained without it; with it they are not."""
    without, with_term = _label_gap(0.0), _label_gap(1.0)
    assert abs(without) < 0.5 and with_term > 3, (without, with_term)

