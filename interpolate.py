"""Class blending (or layer blending) videos / strips / frames per seed, optionally with classifier predictions."""

from pathlib import Path

import click
from tqdm import tqdm

from synthhist.classifier.options import trust_classifier_option
from synthhist.cli import run, setup_logging
from synthhist.demo.models import or_demo
from synthhist.device import resolve_device
from synthhist.explain.interpolate import blend_frames, blend_predictions, format_curve, label_columns
from synthhist.explain.loading import default_batch, load_bridge, load_gan
from synthhist.explain.video import BlendWriter
from synthhist.gan.blend import blend_steps, layer_names, parse_layers
from synthhist.seeds import parse_seeds


@click.command()
@click.option("--network", default=None, help="GAN: .pkl, native model folder, hf:owner/repo or demo [default: demo]")
@click.option("--seeds", required=True, help="Seeds: 0-9, 1,5,9 or a file")
@click.option("--start", type=int, default=0, show_default=True, help="Start class")
@click.option("--end", type=int, default=1, show_default=True, help="End class")
@click.option("--trunc", type=float, default=1, show_default=True, help="Truncation psi")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--outdir", required=True, type=click.Path(file_okay=False), help="Output folder")
@click.option("--video", is_flag=True, help="Save seedNNNN.mp4 (libx264, 30 fps)")
@click.option("--gif", is_flag=True, help="Save seedNNNN.gif")
@click.option("--merge", is_flag=True, help="Save seedNNNN.png: the frames side by side")
@click.option("--steps", type=int, default=100, show_default=True, help="Frames per seed (>= 2)")
@click.option("--layers", default=None, help="Layer blending of these ws indices only: 0-3, 0,2,5, coarse, middle, fine, all")
@click.option("--classifier", default=None, help="Also predict every frame; curve saved as seedNNNN.csv")
@click.option("--batch", type=int, default=None, help="Frames per batch [default: 32 on CUDA, 4 on CPU]")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available]")
@click.option("--gan-um", type=float, default=None, help="GAN tile size in microns, for --classifier [default: network metadata]")
@click.option("--gan-px", type=int, default=None, help="GAN tile size in pixels, for --classifier [default: network metadata]")
@trust_classifier_option
def main(network, seeds, start, end, trunc, noise_mode, outdir, video, gif, merge, steps, layers, classifier, batch,
         device, gan_um, gan_px, trust_classifier):
    """Blend every seed from class --start to class --end in --steps frames (t = i/(steps-1)).

    Without --video/--gif/--merge every frame is saved as seedNNNN-III.png. Seeds whose outputs exist are skipped.
    """
    log = setup_logging(outdir)
    seeds = parse_seeds(seeds)
    network = or_demo(network, "network")
    blend_steps(steps)  # validates --steps
    dev = resolve_device(device)
    net = load_gan(network, start, end, dev)
    if layers is not None:
        layers = parse_layers(layers, net.G.num_ws)
        log.info("layer blending of " + "; ".join(layer_names(net.G.num_ws)[i] for i in layers))
    batch = default_batch(batch, dev)
    writer = BlendWriter(outdir, steps, video, gif, merge, curve=classifier is not None)
    todo = [s for s in seeds if not writer.done(s)]
    if len(todo) < len(seeds):
        log.info(f"{len(seeds) - len(todo)} seeds already done in {outdir}: skipped")
    if classifier:
        clf, bridge = load_bridge(net, classifier, gan_px, gan_um, trust=trust_classifier)
        for seed, curve, frames in tqdm(blend_predictions(net.G, todo, start, end, steps, bridge, clf, layers, trunc,
                                                          noise_mode, batch, dev, keep_frames=True),
                                        total=len(todo), unit="seed", disable=None):
            curve = label_columns(curve, clf)
            click.echo("\n".join(format_curve(seed, curve)))
            writer.write(seed, frames, curve)
    else:
        for seed in tqdm(todo, unit="seed", disable=None):
            writer.write(seed, blend_frames(net.G, seed, start, end, steps, layers, trunc, noise_mode, batch, dev))
    log.info(f"{len(todo)} seeds written to {Path(outdir)}")


if __name__ == "__main__":
    run(main)
