"""Image-quality metrics of a generator against real tiles: FID, KID, precision/recall, fd_clf; overall and per class."""

import click

from synthhist.cli import command, run


@command()
@click.option("--network", "network", default=None, metavar="REF",
              help="Network: .pkl, native folder/.json, hf:owner/repo[/file] or demo [default: demo].")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False),
              help="Real tiles: a folder of TFRecords, or of images (optionally in class subfolders D/<class>/).")
@click.option("--metrics", "metrics", default="fid50k_full", show_default=True,
              help="Comma-separated: fid50k_full, kid50k_full, pr50k3_full, fd_clf.")
@click.option("--classifier", default=None, metavar="REF", help="Histology classifier for fd_clf (folder, hf:, demo).")
@click.option("--annotations", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Annotations CSV labelling the TFRecords' slides (with --outcome).")
@click.option("--outcome", default=None, help="Column of --annotations holding the class.")
@click.option("--num", type=click.IntRange(min=2), default=None,
              help="Generated images per comparison, and cap on real tiles [default: 50000 generated, all reals].")
@click.option("--class", "classes", default="all", show_default=True,
              help="Per-class metrics: all, or one class (index or name; the overall value is always reported).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Append the results to this JSONL file.")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Images per batch.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available].")
def main(network, data, metrics, classifier, annotations, outcome, num, classes, out, batch, device):
    """Print a table of the metrics and, with --out, append one JSON line per metric like NVIDIA's metric-*.jsonl."""
    from pathlib import Path

    from synthhist.cli import setup_logging
    from synthhist.errors import UserError
    from synthhist.explain.loading import resolve_models
    from synthhist.refs import or_demo
    from synthhist.gan import load_network
    from synthhist.metrics.report import append_jsonl, calc_metrics, format_table, parse_metrics
    from synthhist.metrics.reals import open_data

    setup_logging()
    names = parse_metrics(metrics)
    if "fd_clf" in names and classifier is None:
        raise UserError("fd_clf needs a histology classifier: pass --classifier (a model folder, hf:..., or demo)")
    network = or_demo(network, "network")  # reported as given
    path, classifier = resolve_models(network, classifier or "")  # both references before anything slow
    real = open_data(data, annotations, outcome)
    net = load_network(path, device)
    results = calc_metrics(net, real, names, classifier=classifier, num=num, classes=classes, batch=batch)
    for r in results:
        if out:
            append_jsonl(Path(out), dict(r, network=network), network)
    click.echo(format_table(results))


if __name__ == "__main__":
    run(main)
