"""Reading an MDM-family checkpoint safely and mapping its keys onto :class:`MotionDenoiser`'s.

``torch.load(weights_only=True)`` only; EMA (``model_avg``) preferred; ``clip_model.*`` and the seed's
``babel_model.0.{auto_model,model}.*`` split off; the two ``pe`` buffers and ``position_ids`` dropped (recomputed);
unknown or missing keys are an error that names them in the original's spelling.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import MotionGPTError

Kind = Literal["mdm", "motiongpt", "auto"]
KINDS = ("mdm", "motiongpt", "auto")
FAMILY_NAMES = {"mdm": "MDM (GuyTevet/motion-diffusion-model)", "motiongpt": "the seed (humansensinglab/MotionGPT)"}

_LAYER_PARTS = ("self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")  # fmt: skip
_RENAMES = {
    "input_process.poseEmbedding.": "input_proj.",
    "embed_timestep.time_embed.0.": "time_mlp.0.",
    "embed_timestep.time_embed.2.": "time_mlp.2.",
    "embed_text.": "high_proj.",
    "embed_babel_text.": "low_proj.",
    "output_process.poseFinal.": "output_proj.",
}
_DROPPED = ("sequence_pos_encoder.pe", "embed_timestep.sequence_pos_encoder.pe")
_LAYER = re.compile(r"^seqTransEncoder\.layers\.(\d+)\.(.+)$")
_BABEL = re.compile(r"^babel_model\.0\.(auto_model|model)\.(.+)$")
_POSITION_IDS = "embeddings.position_ids"


class CheckpointImportError(MotionGPTError):
    """A checkpoint cannot be imported: unreadable, unsafe, of another family, or with missing/unknown keys."""



def read_checkpoint(path: Path) -> tuple[dict, str]:
    """The unpickled object of ``path`` (tensors and plain containers only) and the file's sha256."""
    import pickle

    import torch

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointImportError(f"cannot read {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text or "Unsupported operand" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" (it asks for {found.group(1).replace(' ', '.')})" if found else ""
            raise CheckpointImportError(
                f"{path}: refused: loading it would run arbitrary code from the pickle{what}; only tensor "
                "checkpoints are read", hint="import only checkpoints from a source you trust; MDM's and the seed's "
                "released .pt files load without this",
            ) from None  # fmt: skip
        raise CheckpointImportError(f"{path}: not a PyTorch checkpoint ({text.splitlines()[0][:120]})") from None
    except Exception as exc:  # garbage bytes fail anywhere in the unpickler (IndexError, EOFError, RuntimeError...)
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointImportError(f"{path}: not a PyTorch checkpoint ({first})") from None
    return obj, digest


def select_state_dict(obj: object, where: str) -> tuple[dict, list[str]]:
    """The state dict to import: ``model_avg`` (EMA) when present, else ``model``, else the object itself."""
    import torch

    notes: list[str] = []
    if not isinstance(obj, Mapping):
        raise CheckpointImportError(f"{where}: not a checkpoint (holds a {type(obj).__name__}, not a state dict)")
    if "model_avg" in obj and isinstance(obj["model_avg"], Mapping):
        notes.append("using the EMA weights (model_avg), as MDM does for --use_ema models")
        obj = obj["model_avg"]
    elif "model" in obj and isinstance(obj["model"], Mapping):
        notes.append("using 'model' (the checkpoint has no EMA weights)")
        obj = obj["model"]
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointImportError(f"{where}: not a state dict (entry {key!r} is a {type(value).__name__})")
        state[key] = value.detach()
    return state, notes


def detect_family(state: Mapping[str, object], kind: Kind, where: str) -> str:
    """``mdm`` or ``motiongpt`` from the keys; an explicit ``kind`` must agree with them."""
    if kind not in KINDS:
        raise CheckpointImportError(f"unknown checkpoint kind {kind!r} (choose {', '.join(KINDS)})")
    if any(k.startswith("seqTransDecoder.") for k in state):
        raise CheckpointImportError(
            f"{where}: an MDM trans_dec checkpoint (BERT / DiP); only trans_enc models are supported "
            "(humanml_trans_enc_512, humanml_enc_512_50steps, the seed's mini)"
        )
    if "embed_text.weight" not in state or not any(k.startswith("seqTransEncoder.") for k in state):
        raise CheckpointImportError(f"{where}: not an MDM-family checkpoint (no embed_text / seqTransEncoder weights)")
    family = "motiongpt" if any(k.startswith("embed_babel_text.") for k in state) else "mdm"
    if kind != "auto" and kind != family:
        raise CheckpointImportError(
            f"{where}: this is a {family} checkpoint ({FAMILY_NAMES[family]}), not {kind}",
            hint=f"run `motiongpt model import {family} ...` or `model import auto ...`",
        )
    return family


@dataclass
class SplitState:
    denoiser: dict
    clip: dict
    babel: dict
    dropped: list[str]
    babel_naming: str | None


def split_state_dict(state: Mapping[str, object], family: str, where: str) -> SplitState:
    """Map the checkpoint's keys onto ours; CLIP and MiniLM tensors apart; ``pe``/``position_ids`` dropped."""
    ours: dict = {}
    clip: dict = {}
    babel: dict = {}
    dropped: list[str] = []
    namings: set[str] = set()
    unknown: list[str] = []
    for key, value in state.items():
        if key in _DROPPED:
            dropped.append(key)
        elif key.startswith("clip_model."):
            clip[key[len("clip_model.") :]] = value
        elif m := _BABEL.match(key):
            namings.add(m.group(1))
            if m.group(2) == _POSITION_IDS:
                dropped.append(key)
            else:
                babel[m.group(2)] = value
        elif m := _LAYER.match(key):
            if m.group(2) not in _LAYER_PARTS:
                unknown.append(key)
            else:
                ours[f"encoder.layers.{m.group(1)}.{m.group(2)}"] = value
        else:
            for old, new in _RENAMES.items():
                if key.startswith(old) and key[len(old) :] in ("weight", "bias"):
                    if old == "embed_babel_text." and family != "motiongpt":
                        break
                    ours[new + key[len(old) :]] = value
                    break
            else:
                unknown.append(key)
    if babel and family != "motiongpt":
        unknown.extend(sorted(k for k in state if k.startswith("babel_model.")))
        babel = {}
    if len(namings) > 1:
        raise CheckpointImportError(f"{where}: babel_model.* uses both the auto_model and the model naming")
    if unknown:
        raise CheckpointImportError(f"{where}: unknown keys for a {family} checkpoint: {_listing(sorted(unknown))}")
    layers = sorted({int(k.split(".")[2]) for k in ours if k.startswith("encoder.layers.")})
    n_layers = (max(layers) + 1) if layers else 0
    expected = {f"{p}.{s}" for p in ("input_proj", "time_mlp.0", "time_mlp.2", "high_proj", "output_proj")
                for s in ("weight", "bias")}  # fmt: skip
    if family == "motiongpt":
        expected |= {"low_proj.weight", "low_proj.bias"}
    expected |= {f"encoder.layers.{i}.{p}" for i in range(n_layers) for p in _LAYER_PARTS}
    missing = sorted(expected - set(ours))
    if n_layers == 0:
        missing.append("seqTransEncoder.layers.0.*")
    if family == "motiongpt" and not babel:
        missing.append("babel_model.0.auto_model.* (the seed's MiniLM)")
    if missing:
        raise CheckpointImportError(f"{where}: missing keys for a {family} checkpoint: "
                                    f"{_listing([_original_name(k) for k in missing])}")  # fmt: skip
    return SplitState(ours, clip, babel, sorted(dropped), namings.pop() if namings else None)


def _original_name(key: str) -> str:
    if key.startswith("encoder.layers."):
        return "seqTransEncoder." + key[len("encoder.") :]
    for old, new in _RENAMES.items():
        if key.startswith(new):
            return old + key[len(new) :]
    return key


def _listing(keys: list[str], limit: int = 8) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
