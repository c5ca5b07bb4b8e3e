"""Training options of train_gan.py: defaults (docs/stylegan2.md §2.1) <- experiment gan_kwargs <- command line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import click

from synthhist.errors import UserError


@dataclass
class TrainOptions:
    """Everything that decides a GAN training run (saved in training_options.json)."""

    kimg: float = 25000          # total training length, thousands of real images shown to D
    batch: int = 32              # global batch per iteration (all processes)
    batch_gpu: int | None = None  # chunk per process and forward pass (gradient accumulation); None = batch/world
    gamma: float | None = None   # R1 weight; required (config or --gamma)
    snap: int = 50               # snapshot every `snap` ticks
    tick: float = 4              # kimg per tick (progress line, log.jsonl)
    resume: str | None = None    # 'latest', a snapshot folder of ours, or a reference .pkl
    seed: int = 0
    aug: str = "ada"             # ada | noaug | fixed
    augment_p: float = 0.2       # augmentation probability for --aug fixed (--p)
    ada_target: float = 0.6      # ADA target for E[sign(D(real))] (--target)
    cbase: int = 32768
    cmax: int = 512
    map_layers: int = 8          # mapping network depth (--map)
    glr: float = 0.002
    dlr: float = 0.002
    fp32: bool = False           # disable fp16 in the top resolutions
    workers: int = 3             # DataLoader workers per process
    metrics: str = "none"        # none | comma-separated names of synthhist.metrics (checked by the metrics hook)
    dry_run: bool = False        # set up, print the options, train nothing
    res: int | None = None       # training resolution; None = the experiment's tile_px
    mbstd_group: int = 4
    diversity: float = 0.0       # weight of the mode-seeking hinge on G (loss.diversity_ratios); 0 = the paper's
    mismatch: float = 0.0        # weight of D's term for real tiles under a wrong label (loss.py); 0 = the paper's
    noise: bool = True           # G's per-pixel noise inputs; False trains without them (the paper's: True)
    ada_interval: int = 4
    ada_kimg: float = 500
    G_reg_interval: int = 4
    D_reg_interval: int = 16

    @property
    def ema_kimg(self) -> float:
        """G_ema half-life in kimg (batch*10/32)."""
        return self.batch * 10 / 32


# gan_kwargs keys of the paper's configs that are not training options (docs/stylegan2.md §2.5).
# 'gpus' is what the paper used; the process count comes from torchrun (a differing count is logged with the
# torchrun line that matches it, entry._gpus_hint). 'mirror' is ignored by
# slideflow's GAN data stream, which flips and rotates real tiles instead (docs/stylegan2.md §2.5), as we do.
_CONFIG_ONLY = {"model": ("stylegan2", "stylegan3"), "cfg": ("stylegan2",), "gpus": None, "mirror": None}


# Option names of the command line, gan_kwargs and training_options.json (NVIDIA's) -> TrainOptions fields.
OPTION_NAMES = {"augment_p": "p", "ada_target": "target", "map_layers": "map"}
_FIELD_OF = {**{v: k for k, v in OPTION_NAMES.items()}, "map_depth": "map_layers"}


def options_record(opts: TrainOptions) -> dict:
    """The options under their command-line names (the training_options.json keys)."""
    return {OPTION_NAMES.get(k, k): v for k, v in dataclasses.asdict(opts).items()}


def resolve_options(gan_kwargs: dict | None, tile_px: int, overrides: dict) -> TrainOptions:
    """Defaults, then the experiment's gan_kwargs, then command-line values that are not None."""
    fields = {f.name for f in dataclasses.fields(TrainOptions)}
    values = {}
    for key, value in (gan_kwargs or {}).items():
        name = key.replace("-", "_")
        if name in _CONFIG_ONLY:
            allowed = _CONFIG_ONLY[name]
            if allowed is not None and value not in allowed:
                raise UserError(f"gan_kwargs {key}={value!r} is not supported (only {', '.join(allowed)})")
            continue
        name = _FIELD_OF.get(name, name)
        if name not in fields:
            raise UserError(f"unknown GAN training option in the experiment's gan_kwargs: {key!r}")
        values[name] = value
    values.update({k: v for k, v in overrides.items() if v is not None and k in fields})
    unknown = set(overrides) - fields
    if unknown:
        raise UserError(f"unknown training options: {', '.join(sorted(unknown))}")
    opts = TrainOptions(**values)
    if opts.res is None:
        opts.res = int(tile_px)
    return opts


def validate(opts: TrainOptions, world_size: int) -> None:
    """Check the options against each other and the number of processes."""
    r = opts.res
    if r < 4 or r & (r - 1):
        raise UserError(f"resolution {r} px is not a power of two >= 4 (set tile_px or --res)")
    if opts.gamma is None:
        raise UserError("--gamma is required (not in the experiment's gan_kwargs); the reference heuristic is "
                        f"0.0002*res^2/batch = {0.0002 * r * r / opts.batch:g}")
    if opts.gamma < 0 or opts.kimg <= 0 or opts.tick <= 0 or opts.snap < 1 or opts.batch < 1:
        raise UserError("--gamma must be >= 0, --kimg and --tick > 0, --snap and --batch >= 1")
    if opts.batch % world_size:
        raise UserError(f"--batch {opts.batch} is not divisible by the number of processes ({world_size})")
    per_process = opts.batch // world_size
    opts.batch_gpu = opts.batch_gpu or per_process
    if per_process % opts.batch_gpu:
        raise UserError(f"--batch-gpu {opts.batch_gpu} does not divide the per-process batch {per_process}")
    group = min(opts.mbstd_group, opts.batch_gpu)
    if opts.batch_gpu % group:
        raise UserError(f"--batch-gpu {opts.batch_gpu} is not divisible by the minibatch-std group ({group})")
    for key in ("diversity", "mismatch"):
        if getattr(opts, key) < 0:
            raise UserError(f"gan_kwargs {key} {getattr(opts, key):g} is negative (a weight: 0 = off)")
    if opts.aug not in ("ada", "noaug", "fixed"):
        raise UserError(f"--aug {opts.aug!r}: choose ada, noaug or fixed")
    if not 0 <= opts.augment_p <= 1 or not 0 < opts.ada_target < 1:
        raise UserError("--p must be in [0, 1] and --target in (0, 1)")


def training_options(f):
    """click decorator adding the GAN training options (None = the config value, then docs/stylegan2.md §2.1).

    --workers (DataLoader workers per process, default 3) comes with the shared project options.
    """
    opts = [
        click.option("--kimg", type=float, help="Training length in thousands of images [config, 25000]."),
        click.option("--batch", type=int, help="Total batch size per iteration [config, 32]."),
        click.option("--batch-gpu", "batch_gpu", type=int, help="Chunk per process (gradient accumulation)."),
        click.option("--gamma", type=float, help="R1 regularisation weight [config]."),
        click.option("--snap", type=int, help="Snapshot interval in ticks [50]."),
        click.option("--tick", type=float, help="Progress interval in kimg [4]."),
        click.option("--resume", type=str, help="'latest' (continue this experiment's newest run), a snapshot "
                                                "folder, or a reference network .pkl (transfer learning)."),
        click.option("--seed", type=int, help="Random seed [0]."),
        click.option("--aug", type=click.Choice(["ada", "noaug", "fixed"]), help="Augmentation mode [ada]."),
        click.option("--p", "augment_p", type=float, help="Augmentation probability for --aug fixed [0.2]."),
        click.option("--target", "ada_target", type=float, help="ADA target [0.6]."),
        click.option("--cbase", type=int, help="Channel base [32768]."),
        click.option("--cmax", type=int, help="Max channels [512]."),
        click.option("--map", "map_layers", type=int, help="Mapping network depth [8]."),
        click.option("--glr", type=float, help="G learning rate [0.002]."),
        click.option("--dlr", type=float, help="D learning rate [0.002]."),
        click.option("--fp32", is_flag=True, default=None, help="Disable fp16 in the top resolutions."),
        click.option("--metrics", help="Metrics at snapshots: none or fid50k_full,kid50k_full,pr50k3_full [none]."),
        click.option("--res", type=int, help="Training resolution [the config's tile_px]."),
        click.option("--dry-run", "dry_run", is_flag=True, default=None, help="Print the options and exit."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def metric_names(metrics: str) -> list[str]:
    """'none' | 'a,b' -> metric names."""
    return [] if metrics in ("", "none") else [m.strip() for m in metrics.split(",") if m.strip()]
