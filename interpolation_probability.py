"""Concordance search, then the classifier's prediction along class blending for every concordant seed (plot + CSV)."""

from pathlib import Path

import click

from synthhist.cli import run, setup_logging
from synthhist.explain.search import concordance_search
from synthhist.explain.probability import concordant_curves, plot_curves
from synthhist.fileio import atomic_open
from synthhist.gan.blend import blend_steps
from synthhist.seeds import parse_seeds


@click.command()
@click.option("--network", default=None, help="GAN: .pkl, native model folder, hf:owner/repo or demo [default: demo]")
@click.option("--classifier", default=None, help="Classifier: model folder, hf:owner/repo or demo [default: demo]")
@click.option("--outdir", "--out", "outdir", required=True, type=click.Path(file_okay=False), help="Output folder")
@click.option("--seeds", default="0-999", show_default=True, help="Seeds to search: 0-999, 1,5,9 or a file")
@click.option("--start", type=int, default=0, show_default=True, help="Start class")
@click.option("--end", type=int, default=1, show_default=True, help="End class")
@click.option("--steps", type=int, default=100, show_default=True, help="Blending steps per seed (>= 2)")
@click.option("--outcome_idx", type=int, default=None, help="Classifier output to use [default: 1 categorical, 0 linear]")
@click.option("--thresh_low", type=float, default=None, help="Strong: pred_start below this [default: from the classifier type]")
@click.option("--thresh_mid", type=float, default=None, help="Weak: pred_start below and pred_end above this")
@click.option("--thresh_high", type=float, default=None, help="Strong: pred_end above this")
@click.option("--batch", type=int, default=None, help="Images per batch [default: 32 on CUDA, 4 on CPU]")
@click.option("--trunc", type=float, default=1, show_default=True, help="Truncation psi")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available]")
@click.option("--gan-um", type=float, default=None, help="GAN tile size in microns [default: network metadata]")
@click.option("--gan-px", type=int, default=None, help="GAN tile size in pixels [default: network metadata]")
def main(network, classifier, outdir, seeds, start, end, steps, outcome_idx, thresh_low, thresh_mid, thresh_high,
         batch, trunc, noise_mode, device, gan_um, gan_px):
    """Writes concordance.csv, curves.csv (per concordant seed and step) and interpolation_probability.png.

    Exits with an error (status 1) when no seed is strong or weak (concordance.csv is still written).
    """
    outdir = Path(outdir)
    log = setup_logging(outdir)
    seeds = parse_seeds(seeds)
    blend_steps(steps)  # validates --steps
    found = concordance_search(outdir / "concordance.csv", log, network, classifier, seeds, start, end, outcome_idx,
                               (thresh_low, thresh_mid, thresh_high), batch, trunc, noise_mode, device, gan_um, gan_px)
    curves = concordant_curves(found.net.G, found.result, start, end, steps, found.bridge, found.clf,
                               found.outcome_idx, psi=trunc, noise_mode=noise_mode, batch=found.batch,
                               device=found.device)
    with atomic_open(outdir / "curves.csv", "w") as f:
        curves.to_csv(f, index=False)
    n = curves["seed"].nunique()
    plot_curves(curves, outdir / "interpolation_probability.png",
                title=f"class {start} -> {end}: output {found.outcome_idx}, {n} concordant seeds")
    click.echo(f"{n} concordant seeds: {outdir / 'interpolation_probability.png'}, {outdir / 'curves.csv'}")


if __name__ == "__main__":
    run(main)
