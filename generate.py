"""Generate images from a trained class-conditional StyleGAN2 (reference pickle, native folder or hf:)."""

import click

from synthhist.cli import command, run


@command()
@click.option("--network", "network", default=None, metavar="REF",
              help="Network: .pkl (StyleGAN2-ADA/StyleGAN3/slideflow), native folder/.json, hf:owner/repo[/file] "
                   "or demo [default: demo].")
@click.option("--seeds", required=True, help="Seeds: '0-99', '1,5,9', or a file with one seed a line.")
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--class", "class_idx", default=None,
              help="Class index or name, e.g. 1 or squamous (required for conditional networks).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--outdir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg"]), default="png", show_default=True)
@click.option("--save-projection", is_flag=True, help="Also save each seed's ws [num_ws, w_dim] as seedNNNN.npy.")
@click.option("--resize", is_flag=True, help="Crop/resize to the target tile (implied by --target-px).")
@click.option("--gan-um", type=float, default=None, help="Microns of a GAN tile [default: network metadata].")
@click.option("--gan-px", type=int, default=None, help="Pixels of a GAN tile [default: network metadata].")
@click.option("--target-um", type=float, default=None, help="Microns to crop to [default: --gan-um].")
@click.option("--target-px", type=int, default=None, help="Pixels to resize the crop to.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="Images per forward pass.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available].")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto = reference (fp16 top blocks on CUDA, fp32 on CPU).")
def main(network, seeds, psi, class_idx, noise_mode, outdir, fmt, save_projection, resize, gan_um, gan_px,
         target_um, target_px, batch, device, precision):
    """Write OUTDIR/seedNNNN.png for every seed, like NVIDIA's and slideflow's generate.py."""
    import math

    from synthhist.refs import or_demo
    from synthhist.errors import UserError
    from synthhist.fileio import remove_stale_temps
    from synthhist.gan import load_network
    from synthhist.gan.classes import resolve_class
    from synthhist.gan.cpu_memory import keep_freed_memory
    from synthhist.gan.generate import crop_from_options, generate_images
    from synthhist.seeds import parse_seeds

    seed_list = parse_seeds(seeds)
    if not math.isfinite(psi):
        raise UserError(f"--trunc must be a finite number, got {psi}")
    keep_freed_memory()  # large CPU activations are reused instead of page-faulted in anew
    net = load_network(or_demo(network, "network"), device)
    class_idx = resolve_class(net, class_idx)
    crop = crop_from_options(net, target_px, target_um, gan_px, gan_um, required=resize)
    remove_stale_temps(outdir)
    generate_images(net, seed_list, outdir, class_idx, psi, noise_mode, fmt, batch, crop, save_projection,
                    precision)


if __name__ == "__main__":
    run(main)
