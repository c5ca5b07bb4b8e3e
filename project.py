"""Project a real tile into a class-conditional StyleGAN2 (NVIDIA's projector, made class-conditional)."""

import click

from synthhist.cli import command, run, setup_logging


@command()
@click.option("--network", default=None, metavar="REF",
              help="GAN: .pkl, native model folder, hf:owner/repo or demo [default: demo]")
@click.option("--target", default=None, type=click.Path(dir_okay=False), help="Target tile: PNG or JPEG")
@click.option("--tfrecord", default=None, type=click.Path(dir_okay=False), help="Target tile from this TFRecord ...")
@click.option("--index", type=int, default=None, help="... at this record index (from 0)")
@click.option("--class", "class_opt", default=None,
              help="Start class (index or name), or auto [default: auto on conditional networks]")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True,
              help="Optimise one w, or one w per synthesis input (w+)")
@click.option("--steps", type=int, default=1000, show_default=True, help="Optimisation steps")
@click.option("--loss", type=click.Choice(["lpips", "pixel", "disc"]), default=None,
              help="Distance: lpips (VGG16, optional package), pixel (L2 + SSIM), disc (D features) "
                   "[default: lpips when installed, else pixel]")
@click.option("--classifier", default=None, help="With --class auto: start from the classifier's call on the tile")
@click.option("--outdir", required=True, type=click.Path(file_okay=False), help="Output folder")
@click.option("--save-video", is_flag=True, help="Also write proj.mp4 (target | reconstruction per step)")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (noise maps, w noise)")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available]")
def main(network, target, tfrecord, index, class_opt, space, steps, loss, classifier, outdir, save_video, seed,
         device):
    """Write OUTDIR/target.png, proj.png, projected_w.npz, loss.csv (and proj.mp4) for one tile."""
    from synthhist.explain.loading import resolve_models
    from synthhist.explain.project_tile import project_tile
    from synthhist.gan import load_network
    from synthhist.refs import or_demo

    setup_logging(outdir)
    network = or_demo(network, "network")  # recorded in projected_w.npz as given
    path, classifier = resolve_models(network, classifier or "")  # both references before anything slow
    net = load_network(path, device, training=loss == "disc")
    project_tile(net, network, outdir, target=target, tfrecord=tfrecord, index=index, class_opt=class_opt,
                 space=space, steps=steps, loss=loss, seed=seed, save_video=save_video, classifier=classifier)


if __name__ == "__main__":
    run(main)
