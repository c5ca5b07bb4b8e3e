"""Class blending (or layer blending) videos / strips / frames per seed, optionally with classifier predictions."""

import math
from pathlib import Path

import click

from synthhist.classifier.options import trust_classifier_option
from synthhist.cli import bool_option, command, run, setup_logging
from synthhist.device import resolve_device
from synthhist.errors import UserError
from synthhist.explain.counterfactual import projected_blends
from synthhist.explain.interpolate import write_blends
from synthhist.explain.loading import default_batch, load_bridge, load_gan, resolve_models
from synthhist.explain.video import MIN_SHOWN_PX, BlendWriter
from synthhist.fileio import remove_stale_temps
from synthhist.gan.blend import blend_steps, layer_names, parse_layers
from synthhist.gan.cpu_memory import keep_freed_memory
from synthhist.seeds import parse_seeds


@command()
@click.option("--network", default=None, help="GAN: .pkl, native model folder, hf:owner/repo or demo [default: demo]")
@click.option("--seeds", default=None, help="Seeds: 0-9, 1,5,9 or a file")
@click.option("--projected", default=None, help="Instead of seeds: a real tile's projected_w.npz (project.py), or a "
              "folder of them: counterfactuals, outputs named after each projection's folder")
@click.option("--start", default="0", show_default=True, help="Start class (index or name)")
@click.option("--end", default="1", show_default=True, help="End class (index or name)")
@click.option("--trunc", type=float, default=1, show_default=True, help="Truncation psi")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--outdir", required=True, type=click.Path(file_okay=False), help="Output folder")
@bool_option("--video", help="Save seedNNNN.mp4 (libx264); --video, --video=True or --video True")
@bool_option("--gif", help="Save seedNNNN.gif")
@bool_option("--merge", help="Save seedNNNN.png: the frames side by side")
@click.option("--steps", type=int, default=100, show_default=True, help="Frames per seed (>= 2)")
@click.option("--fps", type=int, default=30, show_default=True, help="Frames per second of --video / --gif")
@click.option("--size", type=int, default=None, metavar="PX",
              help="Resize video/GIF/strip frames to PX x PX (smooth) [default: the GAN's size, "
              f"upscaled to {MIN_SHOWN_PX} px when smaller]")
@click.option("--layers", default=None, help="Layer blending of these ws indices only: 0-3, 0,2,5, coarse, middle, fine, all")
@click.option("--classifier", default=None, help="Also predict every frame; curve saved as seedNNNN.csv")
@click.option("--batch", type=int, default=None, help="Frames per batch [default: 32 on CUDA, 4 on CPU]")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available]")
@click.option("--gan-um", type=float, default=None, help="GAN tile size in microns, for --classifier [default: network metadata]")
@click.option("--gan-px", type=int, default=None, help="GAN tile size in pixels, for --classifier [default: network metadata]")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages too")
@trust_classifier_option
def main(network, seeds, projected, start, end, trunc, noise_mode, outdir, video, gif, merge, steps, fps, size, layers,
         classifier, batch, device, gan_um, gan_px, verbose, trust_classifier):
    """Blend every seed from class --start to class --end in --steps frames (t = i/(steps-1)).

    Without --video/--gif/--merge every frame is saved as seedNNNN-III.png. Seeds whose outputs exist are skipped.
    """
    if (seeds is None) == (projected is None):
        raise UserError("give --seeds or --projected (one of them)")
    seeds = parse_seeds(seeds) if seeds is not None else None
    blend_steps(steps)  # validates --steps
    if not math.isfinite(trunc):
        raise UserError(f"--trunc must be a finite number, got {trunc}")
    writer = BlendWriter(outdir, steps, video, gif, merge, curve=classifier is not None, fps=fps, size=size)
    network, classifier = resolve_models(network, classifier or "")  # before anything slow is loaded
    keep_freed_memory()  # large CPU activations are reused instead of page-faulted in anew
    log = setup_logging(outdir)  # the log file appears with its first line
    remove_stale_temps(outdir)
    dev = resolve_device(device)
    net, start, end = load_gan(network, start, end, dev)
    if layers is not None:
        layers = parse_layers(layers, net.G.num_ws)
        log.info("layer blending of " + "; ".join(layer_names(net.G.num_ws)[i] for i in layers))
    batch = default_batch(batch, dev)
    clf, bridge = load_bridge(net, classifier, gan_px, gan_um, verbose, trust=trust_classifier) if classifier \
        else (None, None)
    if projected is not None:
        n = projected_blends(net, projected, writer, start, end, steps=steps, layers=layers, noise_mode=noise_mode,
                             batch=batch, device=dev, bridge=bridge, clf=clf)
        log.info(f"{n} counterfactuals written to {Path(outdir)}")
        return
    n = write_blends(net.G, seeds, writer, start, end, steps=steps, layers=layers, psi=trunc, noise_mode=noise_mode,
                     batch=batch, device=dev, bridge=bridge, clf=clf, echo=click.echo)
    log.info(f"{n} seeds written to {Path(outdir)}")


if __name__ == "__main__":
    run(main)
