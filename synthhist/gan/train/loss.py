"""StyleGAN2 loss (docs/stylegan2.md §2.2): non-saturating logistic, lazy R1, path-length reg., style mixing.

Optionally a mode-seeking hinge on G (docs/stylegan2.md §2.6) and a matching-aware term in D (§2.8), both off in
the paper's recipe.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class StyleGAN2Loss:
    """Accumulates the gradients of one training phase ('Gmain', 'Greg', 'Dmain', 'Dreg') for one chunk."""

    def __init__(self, G, D, augment_pipe=None, r1_gamma: float = 10.0, style_mixing_prob: float = 0.9,
                 pl_weight: float = 2.0, pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 diversity_weight: float = 0.0, mismatch_weight: float = 0.0, noise: bool = True):
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.noise = noise  # False: G's noise inputs stay off, their strengths at 0, so the seed alone decides
        self.diversity_weight = diversity_weight
        self.mismatch_weight = mismatch_weight  # D scores real tiles under a wrong label as fakes (needs 2+ classes)
        self.r1_gamma = r1_gamma
        self.style_mixing_prob = style_mixing_prob
        self.pl_weight, self.pl_batch_shrink, self.pl_decay = pl_weight, pl_batch_shrink, pl_decay
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)
        self.real_signs: list[torch.Tensor] = []  # sign(D(real)) of the current ADA interval

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        """z [N, z_dim], c [N, c_dim] -> (img [N, 3, R, R], ws [N, num_ws, w_dim]) with style mixing."""
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.style_mixing_prob > 0:
            num_ws = ws.shape[1]
            cutoff = int(torch.randint(1, num_ws, ())) if num_ws > 1 else num_ws
            if float(torch.rand(())) >= self.style_mixing_prob:
                cutoff = num_ws
            if cutoff < num_ws:
                ws2 = self.G.mapping(torch.randn_like(z), c, update_emas=False)
                ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], 1)
        img = self.G.synthesis(ws, noise_mode="random" if self.noise else "none")
        return img, ws

    def run_G_paired(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fakes in pairs that differ by z only: (a [n, 3, R, R], b [n, 3, R, R], c [n, c_dim]), n = len(z) // 2.

        a = G(z[:n], c[:n]) and b = G(z[n:2n], c[:n]) draw the same style-mixing cutoff and latent and the same
        random noise (one seed replayed for both), so that the spread of a pair is the latent's alone.
        """
        n = len(z) // 2
        seed = int(torch.randint(1 << 62, ()))
        devices = [z.device.index or 0] if z.device.type == "cuda" else []
        halves = []
        for part in (z[:n], z[n:2 * n]):
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                halves.append(self.run_G(part, c[:n])[0])
        return halves[0], halves[1], c[:n]

    def diversity_ratios(self, real_img, real_c, a, b) -> list[torch.Tensor]:
        """Spread of fake pairs a, b over z / that of real tiles of one class, coarse and fine ([] if no pair).

        A spread is the mean |a - b| of two images, average-pooled to 1/8 of their side (layout) and as they are
        (detail). Fakes are clamped to the displayable range first: differences beyond it (a saturated region)
        cannot be seen and do not count.
        """
        labels = real_c.argmax(1) if real_c.shape[1] else torch.zeros(len(real_img), dtype=torch.long, device=real_c.device)
        same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(real_img), dtype=torch.bool, device=labels.device)
        if not same.any() or not len(a):
            return []
        a, b = a.clamp(-1, 1), b.clamp(-1, 1)  # as shown
        ratios = []
        for side in (max(real_img.shape[2] // 8, 1), real_img.shape[2]):
            r = F.adaptive_avg_pool2d(real_img.detach(), side).flatten(1)   # [N, 3*side*side]
            real_spread = (torch.cdist(r, r, p=1) / r.shape[1])[same].mean()
            fake_spread = (F.adaptive_avg_pool2d(a, side) - F.adaptive_avg_pool2d(b, side)).abs().mean()
            ratios.append(fake_spread / real_spread.clamp_min(1e-8))
        return ratios

    @staticmethod
    def wrong_labels(c: torch.Tensor) -> torch.Tensor:
        """One-hot c [N, c_dim] -> one-hot labels of another class, drawn uniformly from the c_dim - 1 others."""
        k = c.shape[1]
        shift = torch.randint(1, k, (len(c),), device=c.device)
        return F.one_hot((c.argmax(1) + shift) % k, k).to(c.dtype)

    def run_D(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Augment (when a pipe is set) and score: [N, 1] logits."""
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def accumulate_gradients(self, phase: str, real_img, real_c, gen_z, gen_c, gain: float) -> dict[str, float]:
        """Backward the phase's loss times gain; returns scalar stats for logging."""
        stats = {}
        if phase == "Gmain":
            if self.diversity_weight > 0:  # D scores the pairs the hinge measures: they must look real too
                a, b, c_pair = self.run_G_paired(gen_z, gen_c)
                rest = len(gen_z) - 2 * len(a)
                img = torch.cat([a, b] + ([self.run_G(gen_z[-rest:], gen_c[-rest:])[0]] if rest else []))
                c = torch.cat([c_pair, c_pair, gen_c[len(gen_c) - rest:]])
            else:
                (img, _), c = self.run_G(gen_z, gen_c), gen_c
            logits = self.run_D(img, c)
            loss = F.softplus(-logits)  # -log(sigmoid(logits))
            total = loss.mean()
            if self.diversity_weight > 0:
                for name, ratio in zip(("coarse", "fine"), self.diversity_ratios(real_img, real_c, a, b)):
                    total = total + self.diversity_weight * F.relu(1 - ratio)
                    stats[f"Loss/G/diversity_{name}"] = ratio.item()
            (total * gain).backward()
            stats["Loss/G/loss"] = loss.mean().item()
        elif phase == "Greg":
            n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            img, ws = self.run_G(gen_z[:n], gen_c[:n])
            noise = torch.randn_like(img) / np.sqrt(img.shape[2] * img.shape[3])
            grads, = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
            lengths = grads.square().sum(2).mean(1).sqrt()  # [n]
            pl_mean = self.pl_mean.lerp(lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            penalty = (lengths - pl_mean).square()
            ((penalty * self.pl_weight).mean() * gain).backward()
            stats["Loss/pl_penalty"] = penalty.mean().item()
        elif phase in ("Dmain", "Dreg"):
            if phase == "Dmain":
                with torch.no_grad():
                    img, _ = self.run_G(gen_z, gen_c, update_emas=True)
                logits = self.run_D(img, gen_c)
                loss_gen = F.softplus(logits)  # -log(1 - sigmoid(logits))
                (loss_gen.mean() * gain).backward()
                stats["Loss/scores/fake"] = logits.mean().item()
            real = real_img.detach().requires_grad_(phase == "Dreg")
            logits = self.run_D(real, real_c)
            self.real_signs.append(logits.detach().sign().flatten())
            if phase == "Dmain":
                loss = F.softplus(-logits)
                (loss.mean() * gain).backward()
                stats["Loss/scores/real"] = logits.mean().item()
                stats["Loss/D/loss"] = (loss + loss_gen).mean().item()
                if self.mismatch_weight > 0 and real_c.shape[1] > 1:  # the right tile, the wrong class: fake
                    wrong = self.run_D(real, self.wrong_labels(real_c))
                    (F.softplus(wrong).mean() * self.mismatch_weight * gain).backward()
                    stats["Loss/scores/mismatch"] = wrong.mean().item()
            else:
                grads, = torch.autograd.grad(logits.sum(), real, create_graph=True)
                penalty = grads.square().sum([1, 2, 3])
                ((penalty * (self.r1_gamma / 2)).mean() * gain).backward()  # D's output bias gets no grad
                stats["Loss/r1_penalty"] = penalty.mean().item()
        else:
            raise ValueError(phase)
        return stats
