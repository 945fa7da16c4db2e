"""What a training run checkpoints to resume exactly, shared by :mod:`.training` and :mod:`.distill`: beside the model
directory's EMA weights (``model.safetensors``), ``train_state.safetensors`` holds the raw weights and optimizer
moments and ``train_state.json`` the step, wall time, optimizer scalars and run configuration; the run's log is
``metrics.jsonl`` next to the model directory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .checkpoint import model_config, write_model_dir
from .errors import MotionGPTError
from .training_config import RunConfig

TRAIN_STATE = "train_state.safetensors"
TRAIN_STATE_JSON = "train_state.json"
METRICS = "metrics.jsonl"


@torch.no_grad()
def update_ema(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float, step: int) -> None:
    d = min(decay, (1 + step) / (10 + step))  # short warm-up so early checkpoints are usable
    for k, v in model.state_dict().items():
        if v.dtype.is_floating_point:
            ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
        else:
            ema[k].copy_(v)


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def save_checkpoint(model_dir, run, schedule, model, optimizer, ema, dataset, fingerprint, step, losses, wall,
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


def read_train_state_json(model_dir: Path) -> tuple[dict, dict]:
    path = model_dir / TRAIN_STATE_JSON
    if not path.is_file() or not (model_dir / TRAIN_STATE).is_file():
        raise MotionGPTError(f"{model_dir}: no training state to resume from (a sampling-only model directory?)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return state, state["run"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise MotionGPTError(f"{path}: unreadable training state ({exc})") from None


def load_train_state(model_dir: Path, model, optimizer, ema, state_json: dict) -> None:
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
