"""Run folder <project>/gan/NNNNN-<name>/: options, log.jsonl, image grids, atomic snapshots.

A snapshot is a folder network-snapshot-<kimg:06d>/ (NVIDIA's name) at a whole kimg, and
network-snapshot-<kimg:06d>.<rest:03d>/ between (0.32 kimg: network-snapshot-000000.320), so no snapshot
replaces another and the names sort in training order. It holds the native network files (G_ema, G, D,
augment p; `load_network` reads it) and training_state.pt (optimizers, cur_nimg, pl_mean, batch index).
It is written under a temporary name and renamed when complete, so a killed run never leaves a partial
snapshot; a snapshot written again under the same name is swapped in so that a kill between the two
renames is undone at the next start (`recover_swaps`). `--resume latest` continues the newest run of the
experiment from its newest complete snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import torch

from synthhist.errors import UserError
from synthhist.fileio import atomic_write_json

SNAPSHOT_PREFIX = "network-snapshot-"
STATE_FILE = "training_state.pt"
OPTIONS_FILE = "training_options.json"


def kimg_tag(cur_nimg: int) -> str:
    """<kimg:06d> at a whole kimg (reference naming), else <kimg:06d>.<images past it:03d>: unique, sortable."""
    kimg, rest = divmod(int(cur_nimg), 1000)
    return f"{kimg:06d}" + (f".{rest:03d}" if rest else "")


def snapshot_name(cur_nimg: int) -> str:
    """network-snapshot-<kimg_tag> (network-snapshot-000004, network-snapshot-000000.320)."""
    return SNAPSHOT_PREFIX + kimg_tag(cur_nimg)


def _complete(snapshot: Path) -> bool:
    return snapshot.is_dir() and (snapshot / STATE_FILE).is_file() and (snapshot / "network.json").is_file()


def list_snapshots(run_dir: Path) -> list[Path]:
    """Complete snapshots of a run folder, oldest first (by the cur_nimg they hold)."""
    snaps = [p for p in Path(run_dir).glob(f"{SNAPSHOT_PREFIX}*") if _complete(p)]
    return sorted(snaps, key=lambda p: (read_state(p)["cur_nimg"], p.name))


def read_state(snapshot: Path) -> dict:
    """The training_state.pt of a snapshot folder."""
    try:
        return torch.load(Path(snapshot) / STATE_FILE, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{snapshot} is not a training snapshot of ours (no {STATE_FILE})") from None
    except Exception as e:
        raise UserError(f"{snapshot / STATE_FILE} is corrupt ({type(e).__name__})") from None


def find_latest_run(gan_dir: Path, name: str) -> Path:
    """Newest run folder NNNNN-<name> with a complete snapshot; UserError when there is none."""
    runs = sorted((p for p in Path(gan_dir).glob(f"[0-9]*-{name}") if p.is_dir() and p.name.split("-")[0].isdigit()),
                  key=lambda p: int(p.name.split("-")[0]))
    for run in reversed(runs):
        recover_swaps(run)
        if list_snapshots(run):
            return run
    raise UserError(f"--resume latest: no run of experiment '{name}' with a snapshot in {gan_dir}")


def check_same_experiment(run_dir: Path, options: dict) -> None:
    """UserError if run_dir's training_options.json describes another experiment or another network."""
    path = Path(run_dir) / OPTIONS_FILE
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UserError(f"{run_dir} has no readable {OPTIONS_FILE}: not a run folder of ours") from None
    keys = ("experiment", "res", "cbase", "cmax", "map")
    diff = [k for k in keys if old.get(k) != options.get(k)]
    sk_old, sk_new = old.get("slideflow_kwargs", {}), options.get("slideflow_kwargs", {})
    diff += [f"slideflow_kwargs.{k}" for k in ("tile_px", "tile_um", "outcome_label_headers", "outcome_labels")
             if sk_old.get(k) != sk_new.get(k)]
    if diff:
        raise UserError(f"{run_dir} holds a different run ({', '.join(diff)} differ): choose another --outdir or "
                        "start a new run without --resume latest")


def write_options(run_dir: Path, options: dict) -> None:
    """training_options.json (atomic)."""
    atomic_write_json(Path(run_dir) / OPTIONS_FILE, options)


def save_snapshot(run_dir: Path, G_ema, G, D, augment_p: float | None, state: dict, class_names, tile_px, tile_um,
                  extra: dict) -> Path:
    """Write network-snapshot-<kimg>/ atomically (temp folder + rename); returns its path."""
    from synthhist.gan import save_network

    final = Path(run_dir) / snapshot_name(state["cur_nimg"])
    tmp = Path(run_dir) / f".{final.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_network(tmp, G_ema, class_names=class_names, tile_px=tile_px, tile_um=tile_um, D=D, G_train=G,
                     augment_p=augment_p, extra=extra)
        torch.save(state, tmp / STATE_FILE)
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _swap_in(tmp: Path, final: Path) -> None:
    """Rename the complete tmp folder to final; an existing final is moved aside first, then removed."""
    if not final.exists():
        os.replace(tmp, final)
        return
    old = final.with_name(f".{final.name}.old{os.getpid()}")
    os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        if not final.exists():
            os.replace(old, final)  # interrupted here: the old copy goes back (a kill is undone by recover_swaps)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover_swaps(run_dir: Path) -> list[Path]:
    """Finish snapshot swaps cut by a kill between their two renames; returns the snapshots put back.

    save_snapshot renames the old NAME to .NAME.old<pid> and then the complete new .NAME.tmp<pid> to NAME;
    killed in between, NAME is missing: the new copy goes in if it is complete, else the old one back.
    """
    restored = []
    for old in sorted(Path(run_dir).glob(f".{SNAPSHOT_PREFIX}*.old*")):
        name, _, pid = old.name[1:].rpartition(".old")
        final, new = old.with_name(name), old.with_name(f".{name}.tmp{pid}")
        if final.exists():
            continue  # the swap finished; only the removal of the old copy was cut
        source = new if _complete(new) else old if _complete(old) else None
        if source is not None:
            os.replace(source, final)
            restored.append(final)
            logging.getLogger("synthhist").info(f"recovered {final.name} from an interrupted snapshot write")
    return restored


def clean_partial(run_dir: Path) -> None:
    """Finish interrupted snapshot swaps, then remove leftovers of killed snapshot writes."""
    recover_swaps(run_dir)
    for p in Path(run_dir).glob(f".{SNAPSHOT_PREFIX}*"):
        shutil.rmtree(p, ignore_errors=True)


class StatsLog:
    """log.jsonl: one JSON object per tick, appended and flushed; trimmed on resume."""

    def __init__(self, run_dir: Path, resume_nimg: int | None = None):
        self.path = Path(run_dir) / "log.jsonl"
        if resume_nimg is not None and self.path.exists():
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by the kill
                if rec.get("kimg", 0) * 1000 <= resume_nimg + 1e-6:
                    keep.append(line)
            from synthhist.fileio import atomic_write_bytes
            atomic_write_bytes(self.path, "".join(k + "\n" for k in keep).encode())
        self.tb = _tensorboard(run_dir)

    def write(self, record: dict) -> None:
        """Append one tick's stats (and to TensorBoard when available)."""
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if self.tb is not None:
            step = int(round(record["kimg"] * 1000))
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "kimg":
                    self.tb.add_scalar(k, v, step)
            self.tb.flush()

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self.tb is not None:
            self.tb.close()


def _tensorboard(run_dir: Path):
    """torch SummaryWriter when the tensorboard package is installed, else None (logged once)."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        logging.getLogger("synthhist").info("tensorboard is not installed: stats go to log.jsonl only")
        return None
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(run_dir))


def save_grid(path: Path, images: torch.Tensor, rows: int) -> None:
    """Save float images [rows*cols, 3, H, W] in [-1, 1] as one PNG grid (row = class)."""
    from synthhist.images import image_grid, save_image, to_uint8

    save_image(path, image_grid(to_uint8(images).cpu().numpy(), len(images) // rows), "png")
