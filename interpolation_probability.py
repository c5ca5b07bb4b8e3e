"""Concordance search, then the classifier's prediction along class blending for every concordant seed (plot + CSV)."""

import click

from synthhist.cli import command, run, setup_logging
from synthhist.explain.probability import concordant_curves, output_paths, plot_curves
from synthhist.explain.search import SearchOptions, concordance_search, search_options
from synthhist.fileio import atomic_open, remove_stale_temps
from synthhist.gan.blend import blend_steps
from synthhist.gan.cpu_memory import keep_freed_memory


@command()
@click.option("--outdir", "--out", "outdir", required=True, type=click.Path(),
              help="Output folder, or the figure itself (a path ending in .png/.jpg/.pdf/.svg; CSVs beside it)")
@click.option("--steps", type=int, default=100, show_default=True, help="Blending steps per seed (>= 2)")
@search_options
def main(outdir, steps, **kwargs):
    """Writes concordance.csv, curves.csv (per concordant seed and step) and interpolation_probability.png.

    Exits with an error (status 1) when no seed is strong or weak (concordance.csv is still written).
    """
    opts = SearchOptions.pop_from(kwargs)
    opts.check()
    blend_steps(steps)  # validates --steps
    figure, search_csv, curves_csv, log_file = output_paths(outdir)
    keep_freed_memory()  # large CPU activations are reused instead of page-faulted in anew
    log = setup_logging(log_file.parent, log_file.name)
    remove_stale_temps(figure.parent)
    found = concordance_search(search_csv, opts, log)
    curves = concordant_curves(found.net.G, found.result, found.start, found.end, steps, found.bridge, found.clf,
                               found.outcome_idx, psi=opts.trunc, noise_mode=opts.noise_mode, batch=found.batch,
                               device=found.device)
    with atomic_open(curves_csv, "w") as f:
        curves.to_csv(f, index=False)
    n = curves["seed"].nunique()
    plot_curves(curves, figure, title=f"class {found.start} -> {found.end}: output {found.outcome_idx}, "
                                      f"{n} concordant seeds")
    click.echo(f"{n} concordant seeds: {figure}, {curves_csv}")


if __name__ == "__main__":
    run(main)
