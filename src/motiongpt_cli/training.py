"""The training loop: one process or many through ``torchrun`` (DDP), with exact resume.

Determinism: everything random in a step (the batch, crops and captions, timesteps, noise, condition dropout, and
the network's dropout) derives from ``(seed, step)``, never from state carried across steps, so a run resumed from a
checkpoint at step k continues exactly as the uninterrupted run would. With DDP, the global batch and its noise are
drawn identically on every rank and each rank takes its slice, so N processes compute the same update as one
process with the same global batch (up to float summation order).

Frozen text encoders run once per unique text before the first step; the loop only indexes embedding tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import lr_schedule, validation
from .checkpoint import model_config, resolve_model_dir, write_model_dir
from .diffusion.denoiser import MotionDenoiser
from .diffusion.losses import diffusion_loss
from .diffusion.schedule import NoiseSchedule
from .errors import MotionGPTError, MotionGPTWarning
from .lr_schedule import lr_at, same_before
from .paths import INDEX_FILE
from .text.conditioning import concat_text
from .training_config import (  # noqa: F401  (re-exported: the run configuration is part of training's API)
    DiffusionConfig,
    OptimConfig,
    RunConfig,
    load_run_config,
    run_config_from_dict,
)

TRAIN_STATE = "train_state.safetensors"
TRAIN_STATE_JSON = "train_state.json"
METRICS = "metrics.jsonl"


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


def records_fingerprint(records: list[dict]) -> str:
    """sha256 over each record's id, split, texts and frame range (not file paths): the dataset's identity."""
    import hashlib

    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r["id"]):
        h.update(json.dumps([r["id"], r["split"], r["high"], r["low"], r["start"], r["end"]]).encode())
    return h.hexdigest()[:16]


class TextTables:
    """Embedding tables for every unique text of the training set, computed once with the frozen encoders."""

    def __init__(self, run: RunConfig, dataset, *, device: str, cache_dir: Path | None) -> None:
        from .text.encoders import load_encoder

        cond = run.model.conditioning
        highs: set[str] = set()
        lows: set[str] = set()
        for rec in dataset.records:
            low = rec["low"] or None
            for h in rec["high"]:
                highs.add(concat_text(h, low or h) if cond == "concat" else h)
            lows.add(low or "")
        lows.update(h for rec in dataset.records if not rec["low"] for h in rec["high"])  # fallback: low = caption
        self.high_index = {t: i for i, t in enumerate(sorted(highs))}
        high_encoder = load_encoder(run.text.high_encoder, device=device, cache_dir=cache_dir)
        if high_encoder.dim != run.model.high_dim:
            raise MotionGPTError(
                f"encoder {run.text.high_encoder} gives {high_encoder.dim}-d embeddings but model.high_dim is "
                f"{run.model.high_dim}"
            )
        self.high = torch.from_numpy(high_encoder.encode(list(self.high_index)))
        self.low_index: dict[str, int] = {}
        self.low: torch.Tensor | None = None
        if cond == "dual":
            lows.discard("")
            self.low_index = {t: i for i, t in enumerate(sorted(lows))}
            low_encoder = load_encoder(run.text.low_encoder, device=device, cache_dir=cache_dir)
            if low_encoder.dim != run.model.low_dim:
                raise MotionGPTError(
                    f"encoder {run.text.low_encoder} gives {low_encoder.dim}-d embeddings but model.low_dim is "
                    f"{run.model.low_dim}"
                )
            self.low = torch.from_numpy(low_encoder.encode(list(self.low_index)))
        self.conditioning = cond

    def lookup(self, highs: list[str], lows: list[str | None]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.conditioning == "concat":
            keys = [concat_text(h, lo or h) for h, lo in zip(highs, lows, strict=True)]
            return self.high[[self.high_index[k] for k in keys]], None
        high = self.high[[self.high_index[h] for h in highs]]
        if self.low is None:
            return high, None
        return high, self.low[[self.low_index[lo or h] for h, lo in zip(highs, lows, strict=True)]]


def model_index(run: RunConfig, records: list[dict], *, cache_dir: Path | None):
    """The retrieval index of the run's training (high, low) pairs, written into every checkpoint, so the model
    proposes low-level texts from its own data. Embedded with the low-level encoder (a sentence encoder: KATE's
    similarity) when the model has one, else the high-level encoder."""
    from .text.encoders import load_encoder
    from .text.index import build_index

    name = run.text.low_encoder if run.model.conditioning == "dual" and run.text.low_encoder else run.text.high_encoder
    encoder = load_encoder(name, device="cpu", cache_dir=cache_dir)
    return build_index(records, encoder, fingerprint=records_fingerprint(records))


def model_assets(run: RunConfig, records: list[dict], *, cache_dir: Path | None) -> tuple[dict[str, bytes], dict]:
    """What every checkpoint carries besides the weights, made once per run: ``(files, config entries)`` with the
    retrieval index of the training pairs and the length predictor (fitted on the high-level encoder; skipped,
    with a warning, when the dataset has no validation clips to choose its ridge strength on)."""
    from .generation import MIN_FRAMES
    from .length import CONFIG_KEY, LENGTH_FILE, fit_length_predictor, predictor_files
    from .text.encoders import load_encoder

    files = {INDEX_FILE: model_index(run, records, cache_dir=cache_dir).to_bytes()}
    if not any(r["split"] == "val" for r in records):
        warnings.warn("the dataset has no val split: the model gets no length predictor (generate keeps a 6 s "
                      "default)", MotionGPTWarning, stacklevel=2)  # fmt: skip
        return files, {}
    encoder = load_encoder(run.text.high_encoder, device="cpu", cache_dir=cache_dir)
    predictor = fit_length_predictor(encoder, records, min_frames=MIN_FRAMES, max_frames=run.model.max_frames)
    files[LENGTH_FILE], entry = predictor_files(predictor)
    return files, {CONFIG_KEY: entry}


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def _global_batch(n_items: int, batch: int, step: int, seed: int) -> list[tuple[int, int]]:
    """(epoch, index) of the global batch at ``step``: a stream of seeded per-epoch permutations."""
    out = []
    for j in range(batch):
        epoch, offset = divmod(step * batch + j, n_items)
        out.append((epoch, int(_epoch_permutation(n_items, seed, epoch)[offset])))
    return out


@functools.lru_cache(maxsize=4)
def _epoch_permutation(n_items: int, seed: int, epoch: int) -> np.ndarray:
    """One epoch's order, computed once (a batch spans at most two epochs, so a small cache suffices)."""
    return np.random.default_rng([seed, epoch]).permutation(n_items)


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
        state_json, saved_cfg = _read_train_state_json(found)
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
        _load_train_state(found, model, optimizer, ema, state_json)
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
        seed = _step_seed(run.train.seed, step)
        torch.manual_seed(seed)  # the network's dropout: a function of (seed, step) and the rank
        if dist.world_size > 1:
            torch.manual_seed(seed + dist.rank)
        g = torch.Generator().manual_seed(seed)
        B = run.train.batch_size
        picks = _global_batch(len(dataset), B, step, run.train.seed)
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
        _update_ema(ema, model, run.train.ema_decay, step)
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
                _append_jsonl(metrics_path, {"step": step, "lr": report.lr, "steps_per_second": round(rate, 4),
                                             "wall_seconds": round(elapsed_before + now - t_start, 2),
                                             **{f"loss_{k}": round(v, 6) for k, v in losses.items()}})  # fmt: skip
            if on_step is not None:
                on_step(report)
        if run.train.sample_every and step % run.train.sample_every == 0 and dist.is_main:
            _write_sample_gif(out_dir, run, schedule, ema, dataset, tables, step, device)
        if step % run.train.checkpoint_every == 0 or step == end:
            if dist.is_main:
                wall = elapsed_before + time.perf_counter() - t_start
                _save(model_dir, run, schedule, model, optimizer, ema, dataset, fingerprint, step, losses, wall,
                      assets)
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


@torch.no_grad()
def _update_ema(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float, step: int) -> None:
    d = min(decay, (1 + step) / (10 + step))  # short warm-up so early checkpoints are usable
    for k, v in model.state_dict().items():
        if v.dtype.is_floating_point:
            ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
        else:
            ema[k].copy_(v)


def _append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def _save(model_dir, run, schedule, model, optimizer, ema, dataset, fingerprint, step, losses, wall,
          assets: tuple[dict[str, bytes], dict]) -> None:
    from safetensors.torch import save as save_bytes

    files, entries = assets
    config = model_config(
        run.model, schedule, run.text, data={"fingerprint": fingerprint, "clips": len(dataset)},
        training={"steps": step, "final_loss": round(losses.get("total", math.nan), 6)}, **entries,
    )  # fmt: skip
    tensors, state_json = train_state(model, optimizer, step, wall, run)
    write_model_dir(
        model_dir, config, ema, dataset.mean, dataset.std,
        extra_files={TRAIN_STATE: save_bytes(tensors), TRAIN_STATE_JSON: json.dumps(state_json, indent=1).encode(),
                     **files},
    )  # fmt: skip


def load_batch(dataset, tables: TextTables, picks: list[tuple[int, int]], device: str):
    """``(x0, mask, high, low)`` of the ``(epoch, index)`` picks, cropped to the longest clip (padding is masked
    anyway and attention is quadratic in length), with their text embeddings, on ``device``."""
    items = []
    for epoch, index in picks:
        dataset.set_epoch(epoch)
        items.append(dataset[index])
    x0 = torch.stack([it["motion"] for it in items]).to(device)
    mask = torch.stack([it["mask"] for it in items]).to(device)
    frames = int(mask.sum(1).max())
    high, low = tables.lookup([it["high"] for it in items], [it["low"] for it in items])
    return x0[:, :frames], mask[:, :frames], high.to(device), None if low is None else low.to(device)


def train_state(model, optimizer, step: int, wall: float, run: RunConfig) -> tuple[dict[str, torch.Tensor], dict]:
    """What resumes a run exactly: ``(tensors, state_json)``, the raw weights and optimizer moments for
    ``train_state.safetensors`` and the step, wall time, optimizer scalars and run config for ``train_state.json``."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for pid, st in opt["state"].items():
        for name, value in st.items():
            if torch.is_tensor(value) and value.dim() > 0:
                tensors[f"optim.{pid}.{name}"] = value.detach().cpu().contiguous()
    scalars = {str(pid): {n: float(v) for n, v in st.items() if not (torch.is_tensor(v) and v.dim() > 0)}
               for pid, st in opt["state"].items()}  # fmt: skip
    state_json = {"step": step, "wall_seconds": round(wall, 2), "optimizer_scalars": scalars,
                  "param_groups": opt["param_groups"], "run": run.to_dict()}  # fmt: skip
    return tensors, state_json


def _read_train_state_json(model_dir: Path) -> tuple[dict, dict]:
    path = model_dir / TRAIN_STATE_JSON
    if not path.is_file() or not (model_dir / TRAIN_STATE).is_file():
        raise MotionGPTError(f"{model_dir}: no training state to resume from (a sampling-only model directory?)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return state, state["run"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise MotionGPTError(f"{path}: unreadable training state ({exc})") from None


def _load_train_state(model_dir: Path, model, optimizer, ema, state_json: dict) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(model_dir / TRAIN_STATE))
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(weights, strict=True)
    opt_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = value
    for pid, scalars in state_json.get("optimizer_scalars", {}).items():
        for name, value in scalars.items():
            opt_state.setdefault(int(pid), {})[name] = torch.tensor(value)
    optimizer.load_state_dict({"state": opt_state, "param_groups": state_json["param_groups"]})
    ema_weights = load_file(str(model_dir / "model.safetensors"))
    for k in ema:
        ema[k].copy_(ema_weights[k])
