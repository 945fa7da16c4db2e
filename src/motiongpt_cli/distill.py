"""Consistency distillation (issue 17 sec. 4): a few-step sampler distilled from a trained model, guidance included.

Method: latent consistency distillation (Song et al. 2023, alg. 2; Luo et al. 2023, LCM; MotionLCM), here in the
normalised HumanML3D feature space. The student starts as a copy of the teacher and learns the consistency
function ``f(x_t, t) = c_skip(t) x_t + c_out(t) F(x_t, t)`` (:func:`~.diffusion.schedule.consistency_scalings`) on
the timesteps of DDIM-50 (:func:`~.diffusion.schedule.consistency_grid`). One step: a training clip is noised to a
grid timestep ``t``; the teacher's *guided* ``x0`` (scale ``guidance``: the conditional and unconditional passes,
as at sampling) gives one DDIM step to the next grid timestep ``s``; the loss is the masked squared distance
between the student's ``f(x_t, t)`` and the target network's ``f(x_s, s)``, where the target is an exponential
moving average of the student (decay ``train.ema_decay``) and is what the checkpoint samples with. At ``s = 0``
the target is ``x_s`` itself (the boundary condition). The guidance scale is folded in: the student samples with
one conditional forward per step (``sampler="lcm"``).

Runs are resumable exactly, as :mod:`motiongpt_cli.training`'s: everything random in a step derives from
``(seed, step)``; the state (student weights, optimizer moments, target weights) is checkpointed with the same
files. The student's ``config.json`` records ``consistency`` (teacher, guidance, grid); ``sampler="auto"`` then
means ``lcm``. The teacher's retrieval index and length predictor are copied into the student's directory.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import validation
from .checkpoint import CONFIG, NORMALIZATION, WEIGHTS, LoadedModel, load_model, resolve_model_dir, write_model_dir
from .diffusion.denoiser import MotionDenoiser
from .diffusion.schedule import CONSISTENCY_GRID, consistency_grid, consistency_scalings
from .errors import MotionGPTError
from .lr_schedule import lr_at
from .training import StepReport, TrainResult
from .training_config import DiffusionConfig, OptimConfig, RunConfig
from .training_data import TextTables, global_batch, load_batch, records_fingerprint, step_seed
from .training_state import (
    METRICS,
    TRAIN_STATE,
    TRAIN_STATE_JSON,
    append_jsonl,
    load_train_state,
    read_train_state_json,
    train_state,
    update_ema,
)

CONSISTENCY_KEY = "consistency"  # config.json entry of a distilled model
DEFAULT_LCM_STEPS = 4


@dataclass
class DistillConfig:
    """What a distillation run takes besides the teacher (a ``[distill]`` table in ``--config``)."""

    steps: int = 2000
    batch_size: int = 32
    lr: float = 5e-5
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.95  # the target network (LCM's 0.95)
    guidance: float = 2.5  # folded into the student
    low_dropout: float = 0.1  # share of steps without the low-level text (so "high only" sampling works)
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25

    def __post_init__(self) -> None:
        checks = {"steps": validation.TRAIN_STEPS, "batch_size": validation.BATCH_SIZE,
                  "lr": validation.Bounds(gt=0, le=10), "warmup_steps": validation.Bounds(integer=True, ge=0),
                  "grad_clip": validation.Bounds(ge=0, le=1e6), "ema_decay": validation.Bounds(ge=0, lt=1),
                  "guidance": validation.GUIDANCE, "low_dropout": validation.Bounds(ge=0, lt=1),
                  "seed": validation.SEED, "checkpoint_every": validation.Bounds(integer=True, ge=1),
                  "log_every": validation.Bounds(integer=True, ge=1)}  # fmt: skip
        for name, bounds in checks.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise MotionGPTError(f"distill.{name} must be a number, got {value!r}")
            problem = bounds.problem(value)
            if problem:
                raise MotionGPTError(f"distill.{name} {problem}")

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> DistillConfig:
        known = set(asdict(cls()))
        unknown = sorted(set(data) - known)
        if unknown:
            raise MotionGPTError(f"{where}: unknown key 'distill.{unknown[0]}'", hint=f"known: {', '.join(known)}")
        try:
            return cls(**data)
        except MotionGPTError as exc:
            raise MotionGPTError(f"{where}: {exc}") from None


def load_distill_config(path: Path | None) -> DistillConfig:
    """The ``[distill]`` table of a TOML file (other tables are refused: the student's architecture, texts and
    schedule are the teacher's), or the defaults."""
    if path is None:
        return DistillConfig()
    from .training_config import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise MotionGPTError(f"distillation config not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MotionGPTError(f"{path}: invalid TOML: {exc}") from None
    other = sorted(set(data) - {"distill"})
    if other:
        raise MotionGPTError(f"{path}: a distillation config takes only a [distill] table, not [{other[0]}]",
                             hint="the student's model, text and diffusion settings are the teacher's")  # fmt: skip
    if not isinstance(data.get("distill", {}), dict):
        raise MotionGPTError(f"{path}: [distill] must be a table")
    return DistillConfig.from_dict(data.get("distill", {}), str(path))


def is_consistency_model(loaded: LoadedModel) -> bool:
    return isinstance(loaded.config, dict) and isinstance(loaded.config.get(CONSISTENCY_KEY), dict)


def teacher_fingerprint(model_dir: Path) -> str:
    """sha256 of the teacher's weights file: a resumed run must distil the same teacher."""
    h = hashlib.sha256()
    with open(Path(model_dir) / WEIGHTS, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _teacher_run(teacher: LoadedModel) -> RunConfig:
    if teacher.text.high_weights or teacher.text.low_weights:
        raise MotionGPTError(f"{teacher.path}: its text encoders use the model directory's own weights; distilling "
                             "such imported checkpoints is not supported")  # fmt: skip
    if is_consistency_model(teacher):
        raise MotionGPTError(f"{teacher.path} is already a distilled (consistency) model", hint="distil its teacher")
    return RunConfig(model=teacher.model.config, text=teacher.text,
                     diffusion=DiffusionConfig(teacher.schedule.num_train_timesteps, teacher.schedule.beta_schedule),
                     train=OptimConfig())  # fmt: skip


def _consistency(model: MotionDenoiser, x: torch.Tensor, t: torch.Tensor, high, low, mask, low_keep) -> torch.Tensor:
    c_skip, c_out = consistency_scalings(t)
    keep = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    out = model(x, t, high, low, mask, keep, low_keep, pack=True)  # the loss is masked: padded frames do not count
    return c_skip.to(x.device)[:, None, None] * x + c_out.to(x.device)[:, None, None] * out


@torch.no_grad()
def _teacher_step(teacher: MotionDenoiser, schedule, x_t, t, s, high, low, mask, low_keep, guidance: float):
    """One DDIM step from ``t`` to ``s`` (per sample) with the teacher's guided ``x0``."""
    B = x_t.shape[0]
    ones = torch.ones(B, dtype=torch.bool, device=x_t.device)
    none = torch.zeros_like(ones)
    out = teacher(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([high, high]),
                  None if low is None else torch.cat([low, low]), torch.cat([mask, mask]), torch.cat([ones, none]),
                  torch.cat([low_keep, none]), pack=True)  # fmt: skip
    x0 = out[B:] + guidance * (out[:B] - out[B:])
    abar = torch.as_tensor(schedule.alphas_cumprod, dtype=torch.float64)  # coefficients in float64, as the scheduler's
    a_t, a_s = abar[t.cpu()], abar[s.cpu()]

    def column(v: torch.Tensor) -> torch.Tensor:
        return v.float().to(x_t.device)[:, None, None]

    eps = (x_t - column(a_t.sqrt()) * x0) / column((1 - a_t).sqrt())
    return column(a_s.sqrt()) * x0 + column((1 - a_s).sqrt()) * eps


def distill(
    teacher_dir: Path,
    records: list[dict],
    out_dir: Path,
    config: DistillConfig | None = None,
    *,
    resume: bool = False,
    device: str = "cpu",
    cache_dir: Path | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    steps: int | None = None,
    max_steps_this_run: int | None = None,
) -> TrainResult:
    """Distil the model in ``teacher_dir`` into ``out_dir/model`` (a model directory sampled with ``lcm``) on the
    training split of ``records`` (normalised with the teacher's mean and std); ``metrics.jsonl`` is the log.
    ``steps`` overrides the configured total (also on resume); the configuration of a resumed run is its own."""
    from .data.dataset import DualTextDataset

    out_dir = Path(out_dir)
    teacher_dir = resolve_model_dir(teacher_dir)
    teacher = load_model(teacher_dir, device=device)
    run = _teacher_run(teacher)
    fingerprint = teacher_fingerprint(teacher_dir)
    cfg = config or DistillConfig()
    start_step, state_json = 0, {}
    if resume:
        try:
            found = resolve_model_dir(out_dir)
        except MotionGPTError:
            raise MotionGPTError(f"{out_dir}: nothing to resume", hint="start without --resume") from None
        state_json, _ = read_train_state_json(found)
        saved = state_json.get("distill")
        if not isinstance(saved, dict):
            raise MotionGPTError(f"{out_dir} holds a training run, not a distillation", hint="resume it without "
                                 "--distill")  # fmt: skip
        if saved.get("teacher_sha256") != fingerprint:
            raise MotionGPTError(f"{out_dir} was distilled from another teacher ({saved.get('teacher')})")
        cfg = DistillConfig.from_dict(saved["config"], f"{found}/{TRAIN_STATE_JSON}")
        start_step = int(state_json["step"])
    elif (out_dir / "model").exists():
        raise MotionGPTError(f"{out_dir} already holds a run", hint="use --resume, or another -o folder")
    if steps is not None:
        cfg.steps = int(validation.TRAIN_STEPS.check("steps", steps))
    if start_step >= cfg.steps:
        raise MotionGPTError(f"the run in {out_dir} already did {start_step} of {cfg.steps} steps",
                             hint="pass more --steps")  # fmt: skip

    dataset = DualTextDataset(records, teacher.mean, teacher.std, split="train", low_source="gt",
                              max_frames=run.model.max_frames, seed=cfg.seed)  # fmt: skip
    if len(dataset) == 0:
        raise MotionGPTError("the dataset has no usable training clips")
    tables = TextTables(run, dataset, device="cpu", cache_dir=cache_dir)
    schedule = teacher.schedule
    grid = torch.tensor(consistency_grid(schedule.num_train_timesteps))
    teacher_net = teacher.model.eval()
    for p in teacher_net.parameters():
        p.requires_grad_(False)
    student = MotionDenoiser(run.model).to(device)
    student.load_state_dict(teacher_net.state_dict())
    target = MotionDenoiser(run.model).to(device).eval()
    optimizer = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=0.0)
    ema = {k: v.detach().clone() for k, v in student.state_dict().items()}
    if resume:
        load_train_state(found, student, optimizer, ema, state_json)
    optim = OptimConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_steps=cfg.warmup_steps)
    state_extra = {"teacher": str(teacher_dir), "teacher_sha256": fingerprint, "config": asdict(cfg)}
    extra_files = {p.name: p.read_bytes() for p in teacher_dir.iterdir()
                   if p.is_file() and p.name not in (CONFIG, WEIGHTS, NORMALIZATION, TRAIN_STATE, TRAIN_STATE_JSON)}
    out_dir.mkdir(parents=True, exist_ok=True)
    data_print = records_fingerprint(records)

    t_start = time.perf_counter()
    last_log = (t_start, start_step)
    elapsed_before = float(state_json.get("wall_seconds", 0.0))
    losses: dict[str, float] = {"total": math.nan}
    step = start_step
    end = cfg.steps if max_steps_this_run is None else min(cfg.steps, start_step + max_steps_this_run)
    student.train()
    while step < end:
        seed = step_seed(cfg.seed, step)
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        B = cfg.batch_size
        n = torch.randint(0, len(grid) - 1, (B,), generator=g)
        noise = torch.randn((B, dataset.max_frames, run.model.feature_dim), generator=g)
        low_keep = torch.rand(B, generator=g) >= cfg.low_dropout
        x0, mask, high, low = load_batch(dataset, tables, global_batch(len(dataset), B, step, cfg.seed), device)
        frames = x0.shape[1]
        low_keep = low_keep.to(device)
        t, s = grid[n].to(device), grid[n + 1].to(device)
        x_t = schedule.add_noise(x0, noise[:, :frames].to(device), t)
        x_s = _teacher_step(teacher_net, schedule, x_t, t, s, high, low, mask, low_keep, cfg.guidance)
        with torch.no_grad():
            target.load_state_dict(ema)
            goal = _consistency(target, x_s, s, high, low, mask, low_keep)
        pred = _consistency(student, x_t, t, high, low, mask, low_keep)
        m = mask[..., None].to(pred.dtype)
        loss = ((pred - goal) ** 2 * m).sum() / (m.sum() * pred.shape[-1])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, optim)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        optimizer.step()
        update_ema(ema, student, cfg.ema_decay, step)
        step += 1
        losses = {"total": float(loss.detach())}
        if step % cfg.log_every == 0 or step == end:
            now = time.perf_counter()
            rate = (step - last_log[1]) / max(now - last_log[0], 1e-9)
            last_log = (now, step)
            append_jsonl(out_dir / METRICS, {"step": step, "lr": lr_at(step - 1, optim),
                                              "steps_per_second": round(rate, 4),
                                              "wall_seconds": round(elapsed_before + now - t_start, 2),
                                              "loss_consistency": round(losses["total"], 6)})  # fmt: skip
            if on_step is not None:
                on_step(StepReport(step, cfg.steps, losses, lr_at(step - 1, optim), rate))
        if step % cfg.checkpoint_every == 0 or step == end:
            wall = elapsed_before + time.perf_counter() - t_start
            _save_student(out_dir / "model", teacher, student, optimizer, ema, run, cfg, state_extra, extra_files,
                          data_print, len(dataset), step, losses, wall)  # fmt: skip
    wall = elapsed_before + time.perf_counter() - t_start
    return TrainResult(out_dir / "model", step, losses.get("total", math.nan), wall, start_step)


def _save_student(model_dir: Path, teacher: LoadedModel, student, optimizer, ema, run: RunConfig, cfg: DistillConfig,
                  state_extra: dict, extra_files: dict, data_print: str, clips: int, step: int, losses: dict,
                  wall: float) -> None:  # fmt: skip
    from safetensors.torch import save as save_bytes

    config = {k: v for k, v in teacher.config.items() if k not in ("training", "name")}
    config["data"] = {"fingerprint": data_print, "clips": clips}
    config["training"] = {"steps": step, "final_loss": round(losses.get("total", math.nan), 6)}
    config[CONSISTENCY_KEY] = {"teacher": teacher.name, "teacher_sha256": state_extra["teacher_sha256"],
                               "guidance": cfg.guidance, "grid": CONSISTENCY_GRID, "steps": DEFAULT_LCM_STEPS}
    tensors, state_json = train_state(student, optimizer, step, wall, run)
    state_json["distill"] = state_extra
    write_model_dir(model_dir, config, ema, np.asarray(teacher.mean), np.asarray(teacher.std),
                    extra_files={**extra_files, TRAIN_STATE: save_bytes(tensors),
                                 TRAIN_STATE_JSON: json.dumps(state_json, indent=1).encode()})  # fmt: skip
