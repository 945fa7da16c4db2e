"""An evaluator for any dataset: the T2M motion encoder with a sentence-embedding text side, trained contrastively.

The motion side is the T2M architecture (movement convolutions + BiGRU on ``length // 4`` steps; sizes
configurable, T2M's by default); the text side is a frozen sentence encoder (MiniLM by default) followed by an MLP.
Training follows the T2M evaluator's: the contrastive loss with margin 10 on Euclidean distances, the negatives
being the batch cyclically shifted by a random offset, Adam, batches of 32, motions cropped as in training (random
caption, multiple of 4 frames). Motions are normalised with the dataset's mean/std, stored with the weights.

The result is a directory like a model directory: ``config.json`` (``"kind": "evaluator"``), ``model.safetensors``
and ``normalization.safetensors``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import CONFIG, NORMALIZATION, WEIGHTS, write_model_dir
from ..errors import MotionGPTError
from .metrics import matching_score, r_precision
from .t2m import MotionEncoderBiGRUCo, MovementConvEncoder, pad_normalised

MARGIN = 10.0


@dataclass
class EvaluatorConfig:
    movement_size: int = 512
    motion_hidden: int = 1024
    embed_size: int = 512
    text_encoder: str = "minilm"
    text_dim: int = 384
    steps: int = 20000
    batch_size: int = 32
    lr: float = 1e-4
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> EvaluatorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise MotionGPTError(f"unknown evaluator settings: {', '.join(sorted(unknown))}")
        cfg = cls(**data)
        for name in ("movement_size", "motion_hidden", "embed_size", "text_dim", "steps", "batch_size"):
            if getattr(cfg, name) < 1:
                raise MotionGPTError(f"evaluator {name} must be positive")
        if cfg.batch_size < 2:
            raise MotionGPTError("evaluator batch_size must be at least 2 (negatives come from the batch)")
        if not (math.isfinite(cfg.lr) and cfg.lr > 0):
            raise MotionGPTError(f"evaluator lr must be a finite number > 0, got {cfg.lr}")
        return cfg

    @classmethod
    def from_toml(cls, path: Path | None, **overrides) -> EvaluatorConfig:
        """The ``[evaluator]`` table of a TOML file (None: the defaults); overrides that are None are ignored."""
        from ..settings import tomllib

        values: dict = {}
        if path is not None:
            try:
                values = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("evaluator", {})
            except FileNotFoundError:
                raise MotionGPTError(f"evaluator config not found: {path}") from None
            except tomllib.TOMLDecodeError as exc:
                raise MotionGPTError(f"{path}: invalid TOML: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)


class SentenceEvaluatorNet(nn.Module):
    def __init__(self, cfg: EvaluatorConfig) -> None:
        super().__init__()
        self.movement_encoder = MovementConvEncoder(259, cfg.movement_size, cfg.movement_size)
        self.motion_encoder = MotionEncoderBiGRUCo(cfg.movement_size, cfg.motion_hidden, cfg.embed_size)
        self.text_net = nn.Sequential(
            nn.Linear(cfg.text_dim, cfg.motion_hidden), nn.LayerNorm(cfg.motion_hidden), nn.LeakyReLU(0.2),
            nn.Linear(cfg.motion_hidden, cfg.embed_size),
        )  # fmt: skip

    def motion(self, normalised: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, T, 263)`` normalised, zero-padded motions (T >= 196 as the T2M loaders pad) -> ``(B, E)``."""
        return self.motion_encoder(self.movement_encoder(normalised[..., :-4]), lengths // 4)

    def text(self, sentence_embeddings: torch.Tensor) -> torch.Tensor:
        return self.text_net(sentence_embeddings)


def contrastive_loss(text: torch.Tensor, motion: torch.Tensor, shift: int, margin: float = MARGIN) -> torch.Tensor:
    """T2M's loss: positives pulled together (d^2), the batch shifted by ``shift`` pushed past ``margin``."""
    pos = torch.linalg.vector_norm(text - motion, dim=-1)
    neg = torch.linalg.vector_norm(text - motion.roll(shift, dims=0), dim=-1)
    return torch.cat([pos**2, torch.clamp(margin - neg, min=0) ** 2]).mean()


class SentenceEvaluator:
    """``encode_text(texts)`` and ``encode_motion(raw features)`` with a trained :class:`SentenceEvaluatorNet`."""

    kind = "sentence"

    def __init__(self, net: SentenceEvaluatorNet, cfg: EvaluatorConfig, mean, std, *, path: Path | None = None,
                 device: str = "cpu", cache_dir: Path | None = None, label: str | None = None,
                 encoder=None) -> None:  # fmt: skip
        self.net, self.cfg, self.path, self.device = net.to(device).eval(), cfg, path, device
        self.label = label
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.cache_dir = cache_dir
        self._encoder = encoder  # the frozen sentence encoder, loaded on first use when not given

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return f"sentence:{self.path.name}" if self.path is not None else "sentence"

    def sentence_embeddings(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            from ..text.encoders import load_encoder

            self._encoder = load_encoder(self.cfg.text_encoder, device=self.device, cache_dir=self.cache_dir)
        return self._encoder.encode(list(texts))

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        emb = torch.from_numpy(self.sentence_embeddings(texts)).to(self.device)
        return self.net.text(emb).cpu().numpy()

    def encode_captions(self, texts: list[str], tokens=None, *, legacy_lengths: bool = False) -> np.ndarray:
        """The evaluation runner's entry point: sentence embeddings need neither tokens nor caption lengths."""
        return self.encode_text(texts)

    @torch.no_grad()
    def encode_motion(self, features: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(features), batch_size):
            chunk = features[i : i + batch_size]
            x, lengths = pad_normalised(chunk, self.mean, self.std)
            out.append(self.net.motion(x.to(self.device), lengths).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.cfg.embed_size), np.float32)


def load_evaluator(path: Path, *, device: str = "cpu", cache_dir: Path | None = None) -> SentenceEvaluator:
    from safetensors.torch import load_file

    path = Path(path)
    try:
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MotionGPTError(f"{path}: not an evaluator directory (no {CONFIG})",
                             hint="train one with `motiongpt evaluate train-evaluator`") from None  # fmt: skip
    except json.JSONDecodeError as exc:
        raise MotionGPTError(f"{path / CONFIG}: invalid JSON ({exc})") from None
    if config.get("kind") != "evaluator":
        raise MotionGPTError(f"{path}: this is not an evaluator directory (kind {config.get('kind')!r})")
    cfg = EvaluatorConfig.from_dict(config["evaluator"])
    net = SentenceEvaluatorNet(cfg)
    try:
        net.load_state_dict(load_file(str(path / WEIGHTS)), strict=True)
        stats = load_file(str(path / NORMALIZATION))
    except (OSError, RuntimeError) as exc:
        raise MotionGPTError(f"{path}: evaluator weights do not load ({str(exc).splitlines()[0]})") from None
    return SentenceEvaluator(net, cfg, stats["mean"].numpy(), stats["std"].numpy(), path=path, device=device,
                             cache_dir=cache_dir, label=config.get("name"))  # fmt: skip


@dataclass
class EvaluatorTrainResult:
    path: Path
    steps: int
    final_loss: float
    val: dict
    seconds: float


def train_evaluator(
    records: list[dict],
    mean: np.ndarray,
    std: np.ndarray,
    out: Path,
    cfg: EvaluatorConfig,
    *,
    device: str = "cpu",
    cache_dir: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> EvaluatorTrainResult:
    """Train on the train split, report R-precision and MM-Dist on the val split, write the evaluator directory."""
    from ..data.dataset import DualTextDataset
    from ..text.encoders import load_encoder

    train_set = DualTextDataset(records, mean, std, split="train", low_source="none", seed=cfg.seed)
    if len(train_set) < cfg.batch_size:
        raise MotionGPTError(f"the train split has {len(train_set)} usable clips, fewer than a batch of "
                             f"{cfg.batch_size}")  # fmt: skip
    encoder = load_encoder(cfg.text_encoder, device=device, cache_dir=cache_dir)
    if encoder.dim != cfg.text_dim:
        raise MotionGPTError(f"{cfg.text_encoder} gives {encoder.dim}-d embeddings, text_dim is {cfg.text_dim}")
    captions = sorted({c for r in train_set.records for c in r["high"]})
    table = torch.from_numpy(encoder.encode(captions))
    row = {c: i for i, c in enumerate(captions)}
    torch.manual_seed(cfg.seed)
    net = SentenceEvaluatorNet(cfg).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    start = time.perf_counter()
    loss_value = float("nan")
    for step in range(cfg.steps):
        train_set.set_epoch(step)  # fresh crops and captions every step
        ids = rng.choice(len(train_set), cfg.batch_size, replace=False)
        items = [train_set[int(i)] for i in ids]
        x = torch.stack([it["motion"] for it in items]).to(device)
        lengths = torch.tensor([it["length"] for it in items])
        text = table[[row[it["high"]] for it in items]].to(device)
        shift = int(rng.integers(1, cfg.batch_size))
        loss = contrastive_loss(net.text(text), net.motion(x, lengths), shift)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        loss_value = float(loss.detach())
        if on_step is not None:
            on_step(step + 1, loss_value)
    seconds = time.perf_counter() - start
    evaluator = SentenceEvaluator(net, cfg, train_set.mean, train_set.std, device=device, cache_dir=cache_dir,
                                  encoder=encoder)
    val = validation_metrics(evaluator, records, mean, std, seed=cfg.seed)
    config = {"kind": "evaluator", "evaluator": dataclasses.asdict(cfg),
              "training": {"steps": cfg.steps, "final_loss": round(loss_value, 5), "seconds": round(seconds, 1)},
              "validation": val}  # fmt: skip
    weights = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    write_model_dir(Path(out), config, weights, train_set.mean, train_set.std)
    return EvaluatorTrainResult(Path(out), cfg.steps, loss_value, val, seconds)


def validation_metrics(evaluator, records, mean, std, *, split: str = "val", seed: int = 0) -> dict:
    """R-precision (top 1-3) and MM-Dist of real clips and their captions, one crop each."""
    from ..data.dataset import DualTextDataset

    ds = DualTextDataset(records, mean, std, split=split, low_source="none", seed=seed)
    if len(ds) < 32:
        return {"clips": len(ds)}
    items = [ds[i] for i in range(len(ds))]
    feats = [it["motion"][: it["length"]].numpy() * ds.std + ds.mean for it in items]
    text = evaluator.encode_text([it["high"] for it in items])
    motion = evaluator.encode_motion(feats)
    order = np.random.default_rng(seed).permutation(len(items))  # batches of unrelated clips, as a shuffled loader
    rp = r_precision(text[order], motion[order])
    return {"clips": len(ds), "r_precision": [round(float(v), 4) for v in rp],
            "matching_score": round(matching_score(text[order], motion[order]), 4)}  # fmt: skip
