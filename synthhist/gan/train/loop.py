"""The training loop (docs/stylegan2.md §2.1-2.2): phases, lazy regularisation, G EMA, ADA, ticks and snapshots."""

from __future__ import annotations

import copy
import logging
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from synthhist.gan.train import rundir
from synthhist.gan.train.augment import AugmentPipe, ada_adjust
from synthhist.gan.train.data import GanDataset, fake_labels, grid_reals, real_batches
from synthhist.gan.train.distributed import Dist, agree, all_reduce_mean, broadcast_module, same_on_all
from synthhist.gan.train.loss import StyleGAN2Loss
from synthhist.gan.train.options import TrainOptions

log = logging.getLogger("synthhist")
GRID_COLS = 8


@dataclass
class Start:
    """Where training starts: fresh, from one of our snapshots (exact continuation) or a reference pickle."""

    kind: str = "fresh"                  # fresh | snapshot | transfer
    path: Path | None = None
    state: dict = field(default_factory=dict)


def network_kwargs(opts: TrainOptions, c_dim: int) -> tuple[dict, dict]:
    """(G_kwargs, D_kwargs) of the StyleGAN2 config (docs/stylegan2.md §2.1); --fp32 drops fp16 and clamping."""
    common = dict(c_dim=c_dim, img_resolution=opts.res, img_channels=3, channel_base=opts.cbase,
                  channel_max=opts.cmax, num_fp16_res=0 if opts.fp32 else 4, conv_clamp=None if opts.fp32 else 256)
    G_kwargs = dict(z_dim=512, w_dim=512, mapping_kwargs={"num_layers": opts.map_layers}, architecture="skip",
                    **common)
    D_kwargs = dict(mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": opts.mbstd_group}, **common)
    return G_kwargs, D_kwargs


def _copy_params(src: torch.nn.Module, dst: torch.nn.Module, what: str, source, require_all: bool) -> int:
    """Copy same-named params/buffers src -> dst; UserError on any shape mismatch (incompatible network)."""
    from synthhist.errors import UserError

    s, d = src.state_dict(), dst.state_dict()
    wrong = [k for k in d if k in s and s[k].shape != d[k].shape]
    missing = [k for k in d if k not in s]
    if wrong or (require_all and missing) or len(missing) == len(d):
        k = (wrong or missing)[0]
        detail = f"{k} is {tuple(s[k].shape)}, this run needs {tuple(d[k].shape)}" if wrong else f"{k} is missing"
        raise UserError(f"cannot resume from {source}: its {what} does not fit this run's network ({detail}; "
                        "check --res/--cbase/--cmax/--map and the number of classes)")
    dst.load_state_dict({k: s[k] if k in s else v for k, v in d.items()})
    return len(missing)


@torch.no_grad()
def _noise_off(G: torch.nn.Module, G_ema: torch.nn.Module) -> None:
    """Set every noise strength of G and G_ema to 0 (gan_kwargs noise false; a resumed network had them learnt)."""
    strengths = [p for m in (G, G_ema) for name, p in m.named_parameters() if name.endswith("noise_strength")]
    if any(float(p) != 0 for p in strengths):
        log.info(f"noise off: the {len(strengths) // 2} noise strengths of G and G_ema set to 0")
    for p in strengths:
        p.zero_()


def _step(module: torch.nn.Module, opt: torch.optim.Optimizer, d: Dist) -> None:
    """Average grads over processes, NaN -> 0 and +-inf -> +-1e5, then step the params that got a gradient.

    As the reference: a param the phase leaves without a gradient (G's toRGB biases in Greg, D's output bias
    in Dreg) is skipped by Adam, not stepped with zeros (which would decay its second moment).
    """
    params = [p for p in module.parameters() if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    all_reduce_mean(flat, d)
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad = g.view_as(p)
    opt.step()


def ema_beta(batch: int, ema_kimg: float, cur_nimg: int, rampup: float | None) -> float:
    """G_ema decay per iteration: half-life ema_kimg, capped at rampup * cur_nimg images when ramping up."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def _update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """G_ema params <- lerp(G, G_ema, beta); buffers copied verbatim."""
    for pe, p in zip(G_ema.parameters(), G.parameters()):
        pe.copy_(p.detach().lerp(pe, beta))
    for be, b in zip(G_ema.buffers(), G.buffers()):
        be.copy_(b)


def _memory(device: torch.device) -> dict[str, float]:
    """Peak memory of this process: RSS (GB) and CUDA allocations (GB)."""
    out = {"mem_cpu_peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
    if device.type == "cuda":
        out["mem_gpu_peak_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        torch.cuda.reset_peak_memory_stats(device)
    return out


def _reseed(opts: TrainOptions, d: Dist, batch_idx: int) -> torch.Generator:
    """Seed this process's random streams from (seed, rank, iteration); returns the fake-label generator."""
    s, s_labels = (int(x) for x in np.random.SeedSequence([opts.seed, d.rank, batch_idx]).generate_state(2))
    torch.manual_seed(s)
    np.random.seed(s)
    return torch.Generator().manual_seed(s_labels)  # its own stream: fake labels independent of the latents


def save_grid(G_ema, ds: GanDataset, path: Path, device: torch.device) -> None:
    """fakes<kimg>.png: one row per class, the same GRID_COLS seeds (0..7) in every row."""
    from synthhist.gan.latent import onehot, z_from_seeds

    z = z_from_seeds(list(range(GRID_COLS)), G_ema.z_dim, device)
    with torch.no_grad():
        rows = [G_ema(z, onehot(k, ds.c_dim, GRID_COLS, device), noise_mode="const") for k in range(ds.c_dim)]
    rundir.save_grid(path, torch.cat(rows), ds.c_dim)


def progress_bar(total_nimg: int, cur_nimg: int, enabled: bool, file=None) -> tqdm:
    """Progress in kimg (3 decimals), shown on a terminal only (the tick lines are the log's progress)."""
    return tqdm(total=total_nimg, initial=cur_nimg, unit_scale=0.001, disable=not enabled, mininterval=1, file=file,
                bar_format="{l_bar}{bar}| {n:.3f}/{total:g} kimg [{elapsed}<{remaining}{postfix}]", dynamic_ncols=True)


@dataclass
class TrainState:
    """Networks, optimizers, loss and counters of a run: everything a snapshot holds."""

    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module
    augment_pipe: AugmentPipe | None
    opt: dict[str, torch.optim.Optimizer]
    loss: StyleGAN2Loss
    cur_nimg: int = 0
    batch_idx: int = 0
    cur_tick: int = 0
    ada_kimg: float = 500
    ema_rampup: float | None = 0.05

    def snapshot(self) -> dict:
        """The training_state.pt content (networks go to the native format)."""
        return {"cur_nimg": self.cur_nimg, "batch_idx": self.batch_idx, "cur_tick": self.cur_tick,
                "pl_mean": self.loss.pl_mean.detach().cpu(), "opt_G": self.opt["G"].state_dict(), "opt_D": self.opt["D"].state_dict()}


def setup_state(opts: TrainOptions, c_dim: int, d: Dist, start: Start) -> TrainState:
    """Build G, D, G_ema, augment pipe, optimizers and loss; load the start point; sync across processes."""
    from synthhist.errors import UserError
    from synthhist.gan import Discriminator, Generator, load_network

    device = d.device
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(opts.seed)  # identical init on every rank; rank 0's weights are broadcast anyway
    G_kwargs, D_kwargs = network_kwargs(opts, c_dim)
    G = Generator(**G_kwargs).train().requires_grad_(False).to(device)
    D = Discriminator(**D_kwargs).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    augment_pipe = None
    if opts.aug != "noaug":
        augment_pipe = AugmentPipe(opts.augment_p if opts.aug == "fixed" else 0.0).train().to(device)
    # Optimizers with the lazy-regularisation corrections (c = I / (I + 1)).
    opt = {}
    for name, module, lr, interval in (("G", G, opts.glr, opts.G_reg_interval), ("D", D, opts.dlr, opts.D_reg_interval)):
        c = interval / (interval + 1)
        opt[name] = torch.optim.Adam(module.parameters(), lr=lr * c, betas=(0.0, 0.99 ** c), eps=1e-8)
    loss = StyleGAN2Loss(G, D, augment_pipe, r1_gamma=opts.gamma, diversity_weight=opts.diversity,
                         mismatch_weight=opts.mismatch, noise=opts.noise)
    ts = TrainState(G, D, G_ema, augment_pipe, opt, loss, ada_kimg=opts.ada_kimg)
    if start.kind != "fresh":
        net = load_network(str(start.path), device="cpu", training=True)
        if net.G_train is None or net.D is None:
            raise UserError(f"cannot resume from {start.path}: it holds no training networks (G and D), only G_ema")
        exact = start.kind == "snapshot"
        for src, dst, what in ((net.G_train, G, "G"), (net.D, D, "D"), (net.G, G_ema, "G_ema")):
            n = _copy_params(src, dst, what, start.path, require_all=exact)
            if n:
                log.info(f"resume: {n} tensors of {what} not in {start.path.name} keep their initial values")
        if augment_pipe is not None and net.augment_p is not None and opts.aug == "ada":
            augment_pipe.p.fill_(net.augment_p)
        if exact:  # our snapshot: continue exactly where it stopped
            ts.cur_nimg, ts.batch_idx = int(start.state["cur_nimg"]), int(start.state["batch_idx"])
            ts.cur_tick = int(start.state.get("cur_tick", 0))  # snapshots written before ticks were saved: 0
            ts.loss.pl_mean.copy_(start.state["pl_mean"])
            try:
                opt["G"].load_state_dict(start.state["opt_G"])
                opt["D"].load_state_dict(start.state["opt_D"])
            except (ValueError, KeyError) as e:
                raise UserError(f"cannot resume from {start.path}: optimizer state does not fit ({e})") from None
        else:  # a reference pickle: transfer learning (reference: faster ADA, no EMA ramp-up)
            ts.ada_kimg, ts.ema_rampup = 100, None
    if not opts.noise:
        _noise_off(G, G_ema)
    for m in (G, D, G_ema, augment_pipe):
        if m is not None:
            broadcast_module(m, d)
    return ts


def training_loop(opts: TrainOptions, ds: GanDataset, run_dir: Path | None, d: Dist, ts: TrainState, start: Start,
                  tile_um: float | None, metrics_hook=None) -> dict:
    """Train ts until opts.kimg; rank 0 writes log.jsonl, grids and snapshots into run_dir. Returns the last stats.

    metrics_hook(run_dir, snapshot_dir, device), when given, runs on rank 0 after every snapshot (--metrics).
    """
    with logging_redirect_tqdm([log]):  # log lines above the progress bar, not glued to it
        return _train(opts, ds, run_dir, d, ts, start, tile_um, metrics_hook)


def _train(opts: TrainOptions, ds: GanDataset, run_dir: Path | None, d: Dist, ts: TrainState, start: Start,
           tile_um: float | None, metrics_hook) -> dict:
    device = d.device
    G, D, G_ema, augment_pipe, loss = ts.G, ts.D, ts.G_ema, ts.augment_pipe, ts.loss
    cur_nimg, batch_idx = ts.cur_nimg, ts.batch_idx
    phases = [("Gmain", G, "G", 1), ("Greg", G, "G", opts.G_reg_interval),
              ("Dmain", D, "D", 1), ("Dreg", D, "D", opts.D_reg_interval)]

    per_process = opts.batch // d.world_size
    rounds = per_process // opts.batch_gpu
    total_nimg = int(round(opts.kimg * 1000))
    gen = _reseed(opts, d, batch_idx)
    data = real_batches(ds, per_process, opts.res, device, d.rank, d.world_size,
                        seed=int(np.random.SeedSequence([opts.seed, batch_idx]).generate_state(1)[0]),
                        workers=opts.workers)
    stats_log = rundir.StatsLog(run_dir, resume_nimg=cur_nimg if start.kind == "snapshot" else None) if d.is_main else None
    if d.is_main and not (run_dir / "reals.png").exists():
        rundir.save_grid(run_dir / "reals.png", grid_reals(ds, GRID_COLS, opts.res), ds.c_dim)
    if d.is_main and start.kind != "snapshot":
        save_grid(G_ema, ds, run_dir / "fakes_init.png", device)

    cur_tick, tick_start_nimg, tick_start_time, start_time = ts.cur_tick, cur_nimg, time.time(), time.time()
    tick_stats: dict[str, list[float]] = {}
    last: dict = {}
    bar = progress_bar(total_nimg, cur_nimg, d.is_main and sys.stderr.isatty())
    done = cur_nimg >= total_nimg
    if done:
        log.info(f"already trained to {cur_nimg / 1000:g} kimg (--kimg {opts.kimg:g}): nothing to do")
    while not done:
        # One iteration: the same reals for every phase, fresh z and fake labels per phase.
        real_img, real_c = next(data)
        real_chunks, realc_chunks = real_img.split(opts.batch_gpu), real_c.split(opts.batch_gpu)
        for phase, module, opt_name, interval in phases:
            if batch_idx % interval:
                continue
            gen_z = torch.randn(per_process, G.z_dim, device=device)
            gen_c = fake_labels(ds, per_process, device, gen)
            module.requires_grad_(True)
            ts.opt[opt_name].zero_grad(set_to_none=True)
            for ri, rc, gz, gc in zip(real_chunks, realc_chunks, gen_z.split(opts.batch_gpu), gen_c.split(opts.batch_gpu)):
                for k, v in loss.accumulate_gradients(phase, ri, rc, gz, gc, gain=interval / rounds).items():
                    tick_stats.setdefault(k, []).append(v)
            module.requires_grad_(False)
            _step(module, ts.opt[opt_name], d)

        _update_ema(G_ema, G, ema_beta(opts.batch, opts.ema_kimg, cur_nimg, ts.ema_rampup))
        cur_nimg += opts.batch
        batch_idx += 1
        bar.update(opts.batch)

        # ADA: adjust p every ada_interval iterations from E[sign(D(real))] over all processes.
        if augment_pipe is not None and opts.aug == "ada" and batch_idx % opts.ada_interval == 0 and loss.real_signs:
            s = torch.cat(loss.real_signs)
            acc = torch.stack([s.sum(), torch.tensor(float(s.numel()), device=s.device)]).float()
            all_reduce_mean(acc, d)
            ada_adjust(augment_pipe.p, float(acc[0] / acc[1]), opts.ada_target, opts.batch, opts.ada_interval,
                       ts.ada_kimg)
            loss.real_signs.clear()
        elif opts.aug != "ada":
            loss.real_signs.clear()

        done = cur_nimg >= total_nimg
        if not done and cur_nimg < tick_start_nimg + opts.tick * 1000:
            continue

        # Tick: stats line, log.jsonl, snapshot every `snap` ticks and at the end.
        cur_tick += 1
        keys = sorted(tick_stats)
        means = torch.tensor([float(np.mean(tick_stats[k])) for k in keys], dtype=torch.float64, device=device)
        all_reduce_mean(means, d)
        tick_time = time.time() - tick_start_time
        kimg_in_tick = (cur_nimg - tick_start_nimg) / 1000
        last = {"kimg": round(cur_nimg / 1000, 3), "tick": cur_tick, "s_per_kimg": round(tick_time / kimg_in_tick, 3),
                "sec_per_tick": round(tick_time, 2), "total_sec": round(time.time() - start_time, 1),
                **{k: round(float(v), 5) for k, v in zip(keys, means.tolist())},
                "augment_p": round(float(augment_pipe.p), 5) if augment_pipe is not None else 0.0,
                **_memory(device), "timestamp": time.time()}
        if d.is_main:
            bar.set_postfix_str(f"{last['s_per_kimg']:.1f} s/kimg, p {last['augment_p']:.3f}", refresh=False)
            log.info(f"tick {cur_tick:<4d} kimg {last['kimg']:<9.3f} {last['s_per_kimg']:.1f} s/kimg  "
                     f"G {last.get('Loss/G/loss', float('nan')):.3f}  D {last.get('Loss/D/loss', float('nan')):.3f}  "
                     f"augment {last['augment_p']:.3f}  mem {last['mem_cpu_peak_gb']:.2f} GB")
            stats_log.write(last)
        snapshot_now = done or cur_tick % opts.snap == 0
        if snapshot_now and d.world_size > 1:
            bad = same_on_all({"G": G, "D": D, "G_ema": G_ema}, d)
            if bad:
                raise RuntimeError(f"processes disagree on the weights of {', '.join(bad)}")
            if d.is_main:
                log.info(f"weights of G, D, G_ema identical on all {d.world_size} processes")
        if d.is_main and snapshot_now:
            ts.cur_nimg, ts.batch_idx, ts.cur_tick = cur_nimg, batch_idx, cur_tick
            state = ts.snapshot()
            snap = rundir.save_snapshot(run_dir, G_ema, G, D, float(augment_pipe.p) if augment_pipe is not None else None,
                                        state, ds.class_names, opts.res, tile_um,
                                        extra={"cur_nimg": cur_nimg, "kimg": cur_nimg / 1000})
            save_grid(G_ema, ds, run_dir / f"fakes{rundir.kimg_tag(cur_nimg)}.png", device)
            log.info(f"snapshot {snap.name}")
            if metrics_hook is not None:
                metrics_hook(run_dir, snap, device)
        done = agree(done, d)
        tick_stats.clear()
        tick_start_nimg, tick_start_time = cur_nimg, time.time()
    bar.close()
    if stats_log is not None:
        stats_log.close()
    return last
