"""Concordance search: for which seeds does the classifier follow the GAN's class change? (CSV + percentages)"""

from pathlib import Path

import click

from synthhist.cli import command, run, setup_logging
from synthhist.explain.counterfactual import projection_concordance
from synthhist.explain.search import SearchOptions, concordance_search, search_options
from synthhist.fileio import remove_stale_temps
from synthhist.gan.cpu_memory import keep_freed_memory


@command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output CSV (seed, pred_start, pred_end, concordance)")
@click.option("--projected", default=None, help="Instead of seeds: a folder of projections (project.py outdirs): "
              "real tile, reconstruction and counterfactual predicted per tile")
@search_options
def main(out, projected, **kwargs):
    """Predict the start- and end-class image of every seed; strong/weak/none concordance per seed."""
    opts = SearchOptions.pop_from(kwargs)
    opts.check()
    keep_freed_memory()  # large CPU activations are reused instead of page-faulted in anew
    out = Path(out)
    log = setup_logging(out.parent, out.stem + ".log")  # the log file appears with its first line
    remove_stale_temps(out.parent)
    if projected is not None:
        projection_concordance(out, projected, opts)
    else:
        concordance_search(out, opts, log)
    log.info(f"wrote {out}")


if __name__ == "__main__":
    run(main)
