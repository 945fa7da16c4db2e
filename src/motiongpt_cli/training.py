"""The training loop: one process or many through ``torchrun`` (DDP), with exact resume.

Determinism: everything random in a step (the batch, crops and captions, timesteps, noise, condition dropout, and
the network's dropout) derives from ``(seed, step)``, never from state carried across steps, so a run resumed from a
checkpoint at step k continues exactly as the uninterrupted run would. With DDP, the global batch and its noise are
drawn identically on every rank and each rank takes its slice, so N processes compute the same update as one
process with the same global batch (up to float summation order).

The batches and the frozen text encoders' embedding tables are in :mod:`.training_data`, what a checkpoint holds to
resume in :mod:`.training_state`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import lr_schedule, validation
from .checkpoint import resolve_model_dir
from .diffusion.denoiser import MotionDenoiser
from .diffusion.losses import diffusion_loss
from .diffusion.schedule import NoiseSchedule
from .errors import MotionGPTError
from .lr_schedule import lr_at, same_before
from .training_config import (  # noqa: F401  (re-exported: the run configuration is part of training's API)
    DiffusionConfig,
    OptimConfig,
    RunConfig,
    load_run_config,
    run_config_from_dict,
)
from .training_data import (  # noqa: F401  (model_index re-exported: part of training's API)
    TextTables,
    global_batch,
    load_batch,
    model_assets,
    model_index,
    records_fingerprint,
    step_seed,
)
from .training_state import (  # noqa: F401  (TRAIN_STATE, train_state re-exported: part of training's API)
    METRICS,
    TRAIN_STATE,
    TRAIN_STATE_JSON,
    append_jsonl,
    load_train_state,
    read_train_state_json,
    save_checkpoint,
    train_state,
    update_ema,
)


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DistInfo:
        """The process's place in a ``torchrun`` job (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), or a lone process."""
        return cls(rank=int(env.get("RANK", 0)), world_size=int(env.get("WORLD_SIZE", 1)),
                   local_rank=int(env.get("LOCAL_RANK", 0)))  # fmt: skip


@contextlib.contextmanager
def process_group(device: str, env: Mapping[str, str]) -> Iterator[tuple[DistInfo, str]]:
    """``(dist, device)`` for this process; under ``torchrun`` the process group (NCCL on CUDA, gloo on CPU) is set
    up on entry, each rank on its own GPU, and destroyed on exit, also after an error."""
    dist = DistInfo.from_env(env)
    if dist.world_size == 1:
        yield dist, device
        return
    import torch.distributed

    if device.startswith("cuda"):
        device = f"cuda:{dist.local_rank}"
        torch.cuda.set_device(dist.local_rank)
    torch.distributed.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    try:
        yield dist, device
    finally:
        torch.distributed.destroy_process_group()


@dataclass
class StepReport:
    step: int
    total_steps: int
    losses: dict[str, float]
    lr: float
    steps_per_second: float


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    final_loss: float
    wall_seconds: float
    resumed_from: int


def train(
    run: RunConfig,
    records: list[dict],
    mean: np.ndarray,
    std: np.ndarray,
    out_dir: Path,
    *,
    resume: bool = False,
    device: str = "cpu",
    dist: DistInfo | None = None,
    cache_dir: Path | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    max_steps_this_run: int | None = None,
    steps: int | None = None,
    decay_steps: int | None = None,
) -> TrainResult:
    """Train (or resume) into ``out_dir``: ``out_dir/model`` is the model directory, ``metrics.jsonl`` the log.

    ``steps`` overrides the configured total (also on resume, to extend a run). ``max_steps_this_run`` stops early
    (after a checkpoint): tests use it to simulate an interruption.
    """
    from .data.dataset import DualTextDataset

    dist = dist or DistInfo()
    out_dir = Path(out_dir)
    start_step = 0
    model_dir = out_dir / "model"
    state_json: dict = {}
    if resume:
        try:
            found = resolve_model_dir(out_dir)
        except MotionGPTError:
            raise MotionGPTError(f"{out_dir}: nothing to resume", hint="start without --resume") from None
        state_json, saved_cfg = read_train_state_json(found)
        if "distill" in state_json:
            raise MotionGPTError(f"{out_dir} holds a distillation", hint="resume it with --distill TEACHER_DIR")
        # the whole run configuration comes from the checkpoint, not from flags; only the step budget may change
        run = run_config_from_dict(saved_cfg, f"{found}/{TRAIN_STATE_JSON}")
        start_step = int(state_json["step"])
    elif (out_dir / "model").exists() and dist.is_main:
        raise MotionGPTError(f"{out_dir} already holds a training run", hint="use --resume, or another -o folder")
    taken = dataclasses.replace(run.train)
    if steps is not None:
        run.train.steps = int(validation.TRAIN_STEPS.check("steps", steps))
    if decay_steps is not None:
        run.train.decay_steps = int(validation.DECAY_STEPS.check("decay_steps", decay_steps))
    if steps is not None or decay_steps is not None:  # a fresh run's own schedule was checked when it was read
        lr_schedule.check(run.train, "--steps/--decay-steps")
    if resume and not same_before(start_step, taken, run.train):
        raise MotionGPTError(
            f"the new learning-rate schedule would change the steps before this checkpoint's step {start_step}",
            hint=f"decay over at most {run.train.steps - start_step} steps from here, or resume with the run's own "
            f"--steps {taken.steps}",
        )
    if start_step >= run.train.steps:
        raise MotionGPTError(
            f"the run in {out_dir} already did {start_step} of {run.train.steps} steps", hint="pass more --steps"
        )

    dataset = DualTextDataset(
        records, mean, std, split="train", low_source="gt", max_frames=run.model.max_frames, seed=run.train.seed
    )
    if len(dataset) == 0:
        raise MotionGPTError("the dataset has no usable training clips")
    tables = TextTables(run, dataset, device="cpu", cache_dir=cache_dir)
    assets = model_assets(run, records, cache_dir=cache_dir) if dist.is_main else ({}, {})
    if run.train.batch_size % dist.world_size:
        raise MotionGPTError(f"batch_size {run.train.batch_size} must be divisible by {dist.world_size} processes")
    local_batch = run.train.batch_size // dist.world_size

    torch.manual_seed(run.train.seed)
    model = MotionDenoiser(run.model).to(device)
    schedule = NoiseSchedule(run.diffusion.num_train_timesteps, run.diffusion.beta_schedule)
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.train.lr, weight_decay=run.train.weight_decay)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if resume:
        load_train_state(found, model, optimizer, ema, state_json)
    train_model: torch.nn.Module = model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [dist.local_rank] if device.startswith("cuda") else None
        train_model = DistributedDataParallel(model, device_ids=ids)
    mean_t = torch.from_numpy(dataset.mean).to(device)
    std_t = torch.from_numpy(dataset.std).to(device)
    fingerprint = records_fingerprint(records)
    use_amp = run.train.amp and device.startswith("cuda")
    metrics_path = out_dir / METRICS
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    t_start = time.perf_counter()
    last_log = (t_start, start_step)
    elapsed_before = float(state_json.get("wall_seconds", 0.0))
    step = start_step
    losses: dict[str, float] = {"total": math.nan}
    end = run.train.steps if max_steps_this_run is None else min(run.train.steps, start_step + max_steps_this_run)
    model.train()
    while step < end:
        seed = step_seed(run.train.seed, step)
        torch.manual_seed(seed)  # the network's dropout: a function of (seed, step) and the rank
        if dist.world_size > 1:
            torch.manual_seed(seed + dist.rank)
        g = torch.Generator().manual_seed(seed)
        B = run.train.batch_size
        picks = global_batch(len(dataset), B, step, run.train.seed)
        t = torch.randint(0, schedule.num_train_timesteps, (B,), generator=g)
        noise = torch.randn((B, dataset.max_frames, run.model.feature_dim), generator=g)
        keep = torch.rand((B, 2), generator=g) >= run.model.cond_dropout  # independent per text, per sample
        lo, hi = dist.rank * local_batch, (dist.rank + 1) * local_batch
        x0, mask, high, low = load_batch(dataset, tables, picks[lo:hi], device)
        frames = x0.shape[1]
        t_local = t[lo:hi].to(device)
        x_t = schedule.add_noise(x0, noise[lo:hi, :frames].to(device), t_local)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, run.train)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            x0_pred = train_model(x_t, t_local, high, low, mask, keep[lo:hi, 0].to(device), keep[lo:hi, 1].to(device),
                                  pack=True)  # fmt: skip  # only the unpadded tokens through the per-token layers
        terms = diffusion_loss(x0_pred.float(), x0, mask, mean_t, std_t, run.loss)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        if run.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), run.train.grad_clip)
        optimizer.step()
        update_ema(ema, model, run.train.ema_decay, step)
        step += 1
        losses = {k: float(v.detach()) for k, v in terms.items()}
        if dist.world_size > 1:
            losses = _all_reduce_mean(losses)
        if step % run.train.log_every == 0 or step == end:
            now = time.perf_counter()
            rate = (step - last_log[1]) / max(now - last_log[0], 1e-9)
            last_log = (now, step)
            report = StepReport(step, run.train.steps, losses, lr_at(step - 1, run.train), rate)
            if dist.is_main:
                append_jsonl(metrics_path, {"step": step, "lr": report.lr, "steps_per_second": round(rate, 4),
                                             "wall_seconds": round(elapsed_before + now - t_start, 2),
                                             **{f"loss_{k}": round(v, 6) for k, v in losses.items()}})  # fmt: skip
            if on_step is not None:
                on_step(report)
        if run.train.sample_every and step % run.train.sample_every == 0 and dist.is_main:
            _write_sample_gif(out_dir, run, schedule, ema, dataset, tables, step, device)
        if step % run.train.checkpoint_every == 0 or step == end:
            if dist.is_main:
                wall = elapsed_before + time.perf_counter() - t_start
                save_checkpoint(model_dir, run, schedule, model, optimizer, ema, dataset, fingerprint, step, losses,
                                wall, assets)
            if dist.world_size > 1:
                torch.distributed.barrier()
    wall = elapsed_before + time.perf_counter() - t_start
    return TrainResult(model_dir, step, losses.get("total", math.nan), wall, start_step)


@torch.no_grad()
def _write_sample_gif(out_dir: Path, run: RunConfig, schedule, ema, dataset, tables, step: int, device: str) -> None:
    """A progress preview: the first training clip's texts, sampled (DDIM-20, seed 0) from the EMA weights."""
    from .diffusion.sampler import SamplingOptions, sample
    from .motion.features import denormalize, features_to_joints
    from .motion.render import write_gif

    rec = dataset.records[0]
    high_text, low_text = rec["high"][0], rec["low"] or None
    model = MotionDenoiser(run.model).to(device)
    model.load_state_dict(ema)
    high, low = tables.lookup([high_text], [low_text])
    frames = min(run.model.max_frames, 120)
    x = sample(model, schedule, high.to(device), None if low is None else low.to(device),
               torch.tensor([frames]), SamplingOptions(steps=20), torch.Generator().manual_seed(0))  # fmt: skip
    joints = features_to_joints(denormalize(x[0].cpu().numpy(), dataset.mean, dataset.std))
    title = f"step {step}: {high_text}" + (f" | {low_text}" if low_text else "")
    (out_dir / "samples").mkdir(parents=True, exist_ok=True)
    write_gif(out_dir / "samples" / f"step-{step:07d}.gif", joints, title=title, overwrite=True)


def _all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    t /= torch.distributed.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))
