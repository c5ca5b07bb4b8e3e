"""Concordance search: for which seeds does the classifier follow the GAN's class change? (CSV + percentages)"""

from pathlib import Path

import click

from synthhist.cli import run, setup_logging
from synthhist.explain.counterfactual import projection_concordance
from synthhist.explain.search import concordance_search
from synthhist.seeds import parse_seeds


@click.command()
@click.option("--network", default=None, help="GAN: .pkl, native model folder, hf:owner/repo or demo [default: demo]")
@click.option("--classifier", default=None, help="Classifier: model folder, hf:owner/repo or demo [default: demo]")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output CSV (seed, pred_start, pred_end, concordance)")
@click.option("--outcome_idx", type=int, default=None, help="Classifier output to use [default: 1 categorical, 0 linear]")
@click.option("--thresh_low", type=float, default=None, help="Strong: pred_start below this [default: from the classifier type]")
@click.option("--thresh_mid", type=float, default=None, help="Weak: pred_start below and pred_end above this")
@click.option("--thresh_high", type=float, default=None, help="Strong: pred_end above this")
@click.option("--seeds", default="0-999", show_default=True, help="Seeds: 0-999, 1,5,9 or a file")
@click.option("--projected", default=None, help="Instead of seeds: a folder of projections (project.py outdirs): "
              "real tile, reconstruction and counterfactual predicted per tile")
@click.option("--start", type=int, default=0, show_default=True, help="Start class")
@click.option("--end", type=int, default=1, show_default=True, help="End class")
@click.option("--batch", type=int, default=None, help="Seeds per batch [default: 32 on CUDA, 4 on CPU]")
@click.option("--trunc", type=float, default=1, show_default=True, help="Truncation psi")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available]")
@click.option("--gan-um", type=float, default=None, help="GAN tile size in microns [default: network metadata]")
@click.option("--gan-px", type=int, default=None, help="GAN tile size in pixels [default: network metadata]")
def main(network, classifier, out, outcome_idx, thresh_low, thresh_mid, thresh_high, seeds, projected, start, end, batch,
         trunc, noise_mode, device, gan_um, gan_px):
    """Predict the start- and end-class image of every seed; strong/weak/none concordance per seed."""
    out = Path(out)
    log = setup_logging(out.parent, out.stem + ".log")
    if projected is not None:
        projection_concordance(out, network, classifier, projected, start, end, outcome_idx,
                               (thresh_low, thresh_mid, thresh_high), batch, noise_mode, device, gan_um, gan_px)
        log.info(f"wrote {out}")
        return
    seeds = parse_seeds(seeds)
    concordance_search(out, log, network, classifier, seeds, start, end, outcome_idx,
                       (thresh_low, thresh_mid, thresh_high), batch, trunc, noise_mode, device, gan_um, gan_px)
    log.info(f"wrote {out}")


if __name__ == "__main__":
    run(main)
