"""The concordance search both scripts start with: load the GAN and classifier, pick defaults, search, report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import click
import pandas as pd
import torch

from synthhist.refs import or_demo
from synthhist.device import resolve_device
from synthhist.explain.bridge import Bridge
from synthhist.explain.concordance import default_outcome, percentages, resumable_seed_search
from synthhist.explain.loading import default_batch, load_bridge, load_gan
from synthhist.gan.checkpoint import GanNetwork


@dataclass
class Search:
    """What a concordance search loaded and found."""

    net: GanNetwork
    clf: object
    bridge: Bridge
    outcome_idx: int
    batch: int
    device: torch.device
    result: pd.DataFrame      # seed, pred_start, pred_end, concordance


def concordance_search(out: Path, log: logging.Logger, network: str | None, classifier: str | None,
                       seeds: list[int], start: int, end: int, outcome_idx: int | None,
                       thresholds: tuple[float | None, float | None, float | None], batch: int | None, trunc: float,
                       noise_mode: str, device: str | None, gan_um: float | None, gan_px: int | None) -> Search:
    """Run (or resume) the seed search into the CSV out and print the percentage of each concordance level."""
    network, classifier = or_demo(network, "network"), or_demo(classifier, "classifier")
    dev = resolve_device(device)
    net = load_gan(network, start, end, dev)
    clf, bridge = load_bridge(net, classifier, gan_px, gan_um)
    idx, th = default_outcome(clf, outcome_idx, thresholds)
    batch = default_batch(batch, dev)
    log.info(f"outcome_idx {idx}; thresholds low {th[0]:g}, mid {th[1]:g}, high {th[2]:g}; batch {batch}; device {dev}")
    settings = dict(network=network, classifier=classifier, outcome_idx=idx, thresholds=list(th), start=start,
                    end=end, trunc=trunc, noise_mode=noise_mode, gan_tile=[bridge.gan_px, bridge.gan_um])
    df = resumable_seed_search(out, settings, seeds, G=net.G, start=start, end=end, bridge=bridge, clf=clf,
                               outcome_idx=idx, thresholds=th, batch=batch, psi=trunc, noise_mode=noise_mode, device=dev)
    for k, v in percentages(df).items():
        click.echo(f"{k}: {v:.1f}% ({int((df['concordance'] == k).sum())}/{len(df)} seeds)")
    return Search(net, clf, bridge, idx, batch, dev, df)
