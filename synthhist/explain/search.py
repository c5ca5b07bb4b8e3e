"""The concordance search both scripts start with: options, load the GAN and classifier, defaults, search, report."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from pathlib import Path

import click
import pandas as pd
import torch

from synthhist.classifier.options import trust_classifier_option
from synthhist.device import resolve_device
from synthhist.errors import UserError
from synthhist.explain.bridge import Bridge
from synthhist.explain.concordance import default_outcome, percentages, resumable_seed_search
from synthhist.explain.loading import default_batch, load_bridge, load_gan, resolve_models
from synthhist.gan.checkpoint import GanNetwork
from synthhist.seeds import parse_seeds


@dataclass(frozen=True)
class SearchOptions:
    """The options of a concordance search (concordance.py, interpolation_probability.py)."""

    network: str | None = None
    classifier: str | None = None
    seeds: str = "0-999"
    start: str = "0"                # class index or name
    end: str = "1"
    outcome_idx: int | None = None
    thresh_low: float | None = None
    thresh_mid: float | None = None
    thresh_high: float | None = None
    batch: int | None = None
    trunc: float = 1.0
    noise_mode: str = "const"
    device: str | None = None
    gan_um: float | None = None
    gan_px: int | None = None
    verbose: bool = False
    trust_classifier: bool = False

    @classmethod
    def pop_from(cls, kwargs: dict) -> "SearchOptions":
        """Take this class's fields out of a click command's keyword arguments."""
        return cls(**{f.name: kwargs.pop(f.name) for f in fields(cls) if f.name in kwargs})

    def check(self) -> None:
        """Validate what needs no model (numbers, seeds) before anything is loaded."""
        for name in ("trunc", "thresh_low", "thresh_mid", "thresh_high", "gan_um"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number, got {v}")
        if self.gan_um is not None and self.gan_um <= 0:
            raise UserError(f"--gan-um must be positive, got {self.gan_um:g}")
        if self.batch is not None and self.batch < 1:
            raise UserError(f"--batch must be at least 1 (got {self.batch})")
        parse_seeds(self.seeds)


def search_options(f):
    """click decorator: the options concordance.py and interpolation_probability.py share (see SearchOptions)."""
    opts = [
        click.option("--network", default=None, help="GAN: .pkl, native model folder, hf:owner/repo or demo [default: demo]"),
        click.option("--classifier", default=None, help="Classifier: model folder, hf:owner/repo or demo [default: demo]"),
        click.option("--seeds", default="0-999", show_default=True, help="Seeds to search: 0-999, 1,5,9 or a file"),
        click.option("--start", default="0", show_default=True, help="Start class (index or name)"),
        click.option("--end", default="1", show_default=True, help="End class (index or name)"),
        click.option("--outcome_idx", type=int, default=None, help="Classifier output to use [default: 1 categorical, 0 linear]"),
        click.option("--thresh_low", type=float, default=None, help="Strong: pred_start below this [default: from the classifier type]"),
        click.option("--thresh_mid", type=float, default=None, help="Weak: pred_start below and pred_end above this"),
        click.option("--thresh_high", type=float, default=None, help="Strong: pred_end above this"),
        click.option("--batch", type=int, default=None, help="Seeds per batch [default: 32 on CUDA, 4 on CPU]"),
        click.option("--trunc", type=float, default=1, show_default=True, help="Truncation psi"),
        click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True),
        click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available]"),
        click.option("--gan-um", type=float, default=None, help="GAN tile size in microns [default: network metadata]"),
        click.option("--gan-px", type=int, default=None, help="GAN tile size in pixels [default: network metadata]"),
        click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages too"),
        trust_classifier_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@dataclass
class Search:
    """What a concordance search loaded and found."""

    net: GanNetwork
    clf: object
    bridge: Bridge
    start: int
    end: int
    outcome_idx: int
    batch: int
    device: torch.device
    result: pd.DataFrame      # seed, pred_start, pred_end, concordance


def concordance_search(out: Path, opts: SearchOptions, log: logging.Logger) -> Search:
    """Run (or resume) the seed search into the CSV out and print the percentage of each concordance level."""
    opts.check()
    seeds = parse_seeds(opts.seeds)
    network, classifier = resolve_models(opts.network, opts.classifier)  # before anything slow is loaded
    dev = resolve_device(opts.device)
    net, start, end = load_gan(network, opts.start, opts.end, dev)
    clf, bridge = load_bridge(net, classifier, opts.gan_px, opts.gan_um, verbose=opts.verbose,
                              trust=opts.trust_classifier)
    idx, th = default_outcome(clf, opts.outcome_idx, (opts.thresh_low, opts.thresh_mid, opts.thresh_high))
    batch = default_batch(opts.batch, dev)
    log.info(f"outcome_idx {idx}; thresholds low {th[0]:g}, mid {th[1]:g}, high {th[2]:g}; batch {batch}; device {dev}")
    settings = dict(network=network, classifier=classifier, outcome_idx=idx, thresholds=list(th), start=start,
                    end=end, trunc=opts.trunc, noise_mode=opts.noise_mode, gan_tile=[bridge.gan_px, bridge.gan_um])
    df = resumable_seed_search(out, settings, seeds, G=net.G, start=start, end=end, bridge=bridge, clf=clf,
                               outcome_idx=idx, thresholds=th, batch=batch, psi=opts.trunc,
                               noise_mode=opts.noise_mode, device=dev)
    for k, v in percentages(df).items():
        click.echo(f"{k}: {v:.1f}% ({int((df['concordance'] == k).sum())}/{len(df)} seeds)")
    return Search(net, clf, bridge, start, end, idx, batch, dev, df)
