"""train_from_experiment: options + dataset + run folder + resume decision, then the training loop."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from synthhist.errors import UserError
from synthhist.fileio import next_run_dir
from synthhist.gan.train import rundir
from synthhist.gan.train.data import load_gan_dataset
from synthhist.gan.train.distributed import init_distributed, shutdown
from synthhist.gan.train.loop import Start, network_kwargs, setup_state, training_loop
from synthhist.gan.train.options import TrainOptions, metric_names, options_record, resolve_options, validate

log = logging.getLogger("synthhist")


def _start(opts: TrainOptions, gan_dir: Path, name: str, options: dict) -> tuple[Start, Path | None]:
    """Decide where training starts and which run folder it writes (None = a new one)."""
    if opts.resume is None:
        return Start(), None
    if opts.resume == "latest":
        run_dir = rundir.find_latest_run(gan_dir, name)
        rundir.check_same_experiment(run_dir, options)
        snap = rundir.list_snapshots(run_dir)[-1]
        return Start("snapshot", snap, rundir.read_state(snap)), run_dir
    path = Path(opts.resume).expanduser()
    if not path.exists():
        raise UserError(f"--resume {opts.resume}: not found (give 'latest', a snapshot folder or a network .pkl)")
    if path.is_dir() and (path / rundir.STATE_FILE).is_file():
        return Start("snapshot", path, rundir.read_state(path)), None
    return Start("transfer", path), None


def _gpus_hint(gan_kwargs: dict | None, world_size: int) -> None:
    """Log how to match the config's gan_kwargs.gpus (the paper's GPU count) when this run has another."""
    gpus = (gan_kwargs or {}).get("gpus")
    if gpus and gpus != world_size:
        log.info(f"the experiment was configured for {gpus} GPU(s) (gan_kwargs.gpus) and this run has {world_size} "
                 f"process(es): --batch is global, so the schedule is the same; `torchrun --nproc_per_node={gpus} "
                 "train_gan.py ...` runs one process per GPU")


def _options_record(opts: TrainOptions, exp, ds, world_size: int, start: Start, tfrecord_dir: Path, root: Path) -> dict:
    """training_options.json content: all options + networks + slideflow_kwargs (read by interpolators/viewers)."""
    G_kwargs, D_kwargs = network_kwargs(opts, ds.c_dim)
    sf = {"project_path": str(root), "tile_px": int(exp.tile_px), "tile_um": exp.tile_um, "model_type": "categorical",
          "outcome_label_headers": exp.outcome, "outcome_labels": {str(i): n for i, n in enumerate(ds.class_names)},
          "filters": {}, "filter_blank": []}
    if opts.res != exp.tile_px:
        sf["resize"] = opts.res
    return {"experiment": exp.name, **options_record(opts), "ema_kimg": opts.ema_kimg, "world_size": world_size,
            "G_kwargs": G_kwargs, "D_kwargs": D_kwargs, "start": start.kind,
            "start_from": str(start.path) if start.path else None,
            "training_set_kwargs": {"tfrecord_dir": str(tfrecord_dir), "slides": len(ds.tfrecords), "num_tiles": ds.num_tiles,
                                    "augment": "xyr", "onehot": True, "class_probs": [float(p) for p in ds.class_probs]},
            "slideflow_kwargs": sf}


def _metrics_hook(metrics_for, spec: str):
    """The snapshot hook for --metrics spec (checked now, before training starts), or None."""
    names = metric_names(spec)
    if not names:
        return None
    if metrics_for is None:
        raise UserError(f"--metrics {spec}: no metrics available to this caller")
    return metrics_for(names)


def train_from_experiment(project, exp, *, metrics_for=None, **cli_overrides) -> Path | None:
    """Train the experiment's class-conditional StyleGAN2 (options: gan_kwargs <- command line); returns the run dir.

    metrics_for(names) -> hook(run_dir, snapshot_dir, device): what computes --metrics at each snapshot (the scripts
    pass synthhist.metrics.report.training_metrics; training itself does not import the metrics package).
    """
    if exp.kind != "gan":
        raise UserError(f"experiment '{exp.name}' is a {exp.kind} config: train_gan.py needs a GAN config")
    d = init_distributed()
    try:
        opts = resolve_options(exp.gan_kwargs, exp.tile_px, cli_overrides)
        validate(opts, d.world_size)
        ds = load_gan_dataset(project.annotations, exp.outcome, project.tfrecord_dir, exp.tile_px)
        gan_dir = Path(project.gan_dir)
        probe = _options_record(opts, exp, ds, d.world_size, Start(), project.tfrecord_dir, Path(project.root))
        start, run_dir = _start(opts, gan_dir, exp.name, probe)
        options = _options_record(opts, exp, ds, d.world_size, start, project.tfrecord_dir, Path(project.root))
        _gpus_hint(exp.gan_kwargs, d.world_size)
        if opts.dry_run:
            if d.is_main:
                print(json.dumps(options, indent=2))
                print(f"dry run: would train in {run_dir or next_run_dir(gan_dir, exp.name)}")
            return None
        hook = _metrics_hook(metrics_for, opts.metrics)  # checked (weights fetched) before anything is written
        ts = setup_state(opts, ds.c_dim, d, start)  # checks a resume source before anything is written
        continuing = run_dir is not None
        if d.is_main:
            from synthhist.cli import setup_logging

            run_dir = run_dir or next_run_dir(gan_dir, exp.name)
            run_dir.mkdir(parents=True, exist_ok=continuing)
            setup_logging(run_dir)
            rundir.clean_partial(run_dir)
            rundir.write_options(run_dir, options)
            log.info(f"{'continuing' if continuing else 'training in'} {run_dir} ({d.world_size} process(es) on "
                     f"{d.device.type}; {opts.kimg:g} kimg, batch {opts.batch}, gamma {opts.gamma:g}, {opts.res} px)")
            if start.kind != "fresh":
                log.info(f"resuming from {start.path} ({start.kind}"
                         + (f", kimg {start.state['cur_nimg'] / 1000:g})" if start.state else ")"))
        training_loop(opts, ds, run_dir, d, ts, start, exp.tile_um, hook if d.is_main else None)
        return run_dir
    finally:
        shutdown()
