"""CLIP weight files, read without running any code, as the text-tower state dict :mod:`.clip` loads.

Formats, told apart by content (not by name):

- safetensors: open_clip's ``open_clip_model.safetensors``, or our own ``clip.safetensors``;
- a ``torch.save`` file (zip or legacy): open_clip's ``open_clip_pytorch_model.bin``, a training checkpoint
  (``{"state_dict": {"module.<key>": ...}}``), read with ``torch.load(weights_only=True)``;
- a TorchScript archive: OpenAI's ``ViT-B-32.pt``, the file ``clip.load`` downloads to ``~/.cache/clip`` (and the
  file MDM users have). ``torch.load(weights_only=True)`` refuses TorchScript, and ``torch.jit.load`` compiles and
  runs the archive's code, so neither is used. The archive is a zip under one root folder: ``code/`` (TorchScript
  source: never read), ``constants.pkl`` + ``constants/`` (the traced graph's constant tensors, e.g. a traced
  attention mask: not parameters, never read), ``data/<key>`` (raw storage bytes, little-endian) and ``data.pkl``:
  the module tree as a pickle, each module a ``__torch__.<class>`` object whose attribute dict holds its
  parameters, buffers, plain attributes (``training``, ints, ``None``) and child modules. ``data.pkl`` is read with
  a restricted unpickler: a ``__torch__`` class becomes an inert record of its attributes, and the only callables
  are a tensor rebuilt from a ``data/`` entry (``torch._utils._rebuild_tensor_v2``, ``torch.<T>Storage``),
  ``collections.OrderedDict`` and TorchScript's list/type-tag helpers (``torch.jit._pickle``), all replaced by our
  own functions; any other global refuses the file. Tensors are named by their attribute path
  (``transformer.resblocks.0.attn.in_proj_weight``), which are the names of ``jit_model.state_dict()``; tensor
  attributes that are not parameters (a scripted model's ``attn_mask``) are dropped with the visual tower below.

:func:`text_tower` then keeps the text tower (OpenAI's names are open_clip's: ``token_embedding.weight``,
``positional_embedding``, ``transformer.resblocks.<i>.*``, ``ln_final.*``, ``text_projection``), strips the
prefixes ``module.`` and ``clip_model.`` (an MDM checkpoint's embedded CLIP), and checks every tensor's shape against
the open_clip architecture's config, so a wrong file fails here with the tensors named, not later inside open_clip.
Dtypes are kept (OpenAI's fp16 Linear weights, fp32 embeddings and LayerNorms).
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from .encoder_weights import EncoderUnavailableError, check_clip_architecture

# torch.<Name>Storage -> dtype name (the storage classes pickles name; torch.save and TorchScript alike)
_STORAGE_DTYPES = {
    "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16", "DoubleStorage": "float64",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}  # fmt: skip
_PREFIXES = ("module.", "clip_model.")
_BLOCK = re.compile(r"^transformer\.resblocks\.(\d+)\.(.+)$")


class _ScriptObject:
    """A TorchScript object (``__torch__.<class>``) as data: its pickled attributes, nothing callable."""

    type_name = "?"

    def __init__(self) -> None:
        self.attributes: object = None

    def __setstate__(self, state: object) -> None:  # BUILD: the attribute dict (or a __getstate__ value)
        self.attributes = state


class _StorageType:
    def __init__(self, dtype: str) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    """``torch._utils._rebuild_tensor_v2``'s arguments, rebuilt as a view of the storage's bytes (copied)."""
    import torch

    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError("a tensor without a data/ storage")
    return storage.as_strided(tuple(size), tuple(stride), int(offset)).clone()


def _restore_type_tag(value, type_str=None):
    return value


class _TorchScriptUnpickler(pickle.Unpickler):
    """``data.pkl`` of a TorchScript archive: module records and tensors, every other global refused."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.root = archive, root
        self.types: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        full = f"{module}.{name}"
        if module == "__torch__" or module.startswith("__torch__."):  # a scripted module or class: a record
            if full not in self.types:
                self.types[full] = type(name, (_ScriptObject,), {"type_name": full})
            return self.types[full]
        if full == "torch._utils._rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if full == "collections.OrderedDict":
            return OrderedDict
        if full == "torch.jit._pickle.restore_type_tag":
            return _restore_type_tag
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist",
                                                      "build_tensorlist", "build_list"):  # fmt: skip
            return list
        raise pickle.UnpicklingError(f"global {full}")

    def persistent_load(self, pid):
        import torch

        # ('storage', torch.<T>Storage, key, location, numel): the bytes are <root>/data/<key>; location ignored
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and re.fullmatch(r"\w+", str(pid[2]))):  # fmt: skip
            raise pickle.UnpicklingError(f"persistent id {str(pid)[:80]}")
        dtype = getattr(torch, pid[1].dtype)
        try:
            raw = self.archive.read(f"{self.root}/data/{pid[2]}")
        except KeyError:
            raise pickle.UnpicklingError(f"missing storage data/{pid[2]}") from None
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(raw) < int(pid[4]) * itemsize:
            raise pickle.UnpicklingError(f"storage data/{pid[2]} is shorter than its {pid[4]} elements")
        if not raw:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(bytearray(raw), dtype=dtype)[: int(pid[4])]


def _archive_root(archive: zipfile.ZipFile) -> str | None:
    roots = {name.split("/", 1)[0] for name in archive.namelist() if "/" in name}
    return roots.pop() if len(roots) == 1 else None


def is_torchscript(path: Path) -> bool:
    """A zip whose one root folder has ``data.pkl`` and ``code/`` (``torch.save`` zips have no ``code/``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        root = _archive_root(archive)
        names = set(archive.namelist())
        return root is not None and f"{root}/data.pkl" in names and any(n.startswith(f"{root}/code/") for n in names)


def read_torchscript_tensors(path: Path) -> dict:
    """Every tensor of a TorchScript archive's module tree, by attribute path; no code of the archive runs."""
    import torch

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            root = _archive_root(archive)
            if root is None or f"{root}/data.pkl" not in archive.namelist():
                raise EncoderUnavailableError(f"{path}: not a TorchScript archive (no data.pkl)")
            order = archive.read(f"{root}/byteorder").decode().strip() if f"{root}/byteorder" in archive.namelist() \
                else "little"  # fmt: skip
            if order != "little":
                raise EncoderUnavailableError(f"{path}: a {order}-endian TorchScript archive is not supported")
            obj = _TorchScriptUnpickler(archive.read(f"{root}/data.pkl"), archive, root).load()
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if text.startswith("global "):
            raise EncoderUnavailableError(
                f"{path}: refused: its pickle asks for {text[len('global '):]}, which could run code; only tensors "
                "are read from CLIP weight files",
                hint="OpenAI's ViT-B-32.pt and open_clip's files load without this; use a file from a source you trust",
            ) from None  # fmt: skip
        raise EncoderUnavailableError(f"{path}: unreadable TorchScript archive ({text[:120]})") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, TypeError, IndexError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise EncoderUnavailableError(f"{path}: unreadable TorchScript archive ({first})") from None
    tensors: dict = {}

    def walk(value: object, prefix: str, depth: int) -> None:
        if depth > 64:
            return
        if isinstance(value, torch.Tensor):
            tensors[prefix.rstrip(".")] = value
        elif isinstance(value, _ScriptObject) and isinstance(value.attributes, Mapping):
            for key, child in value.attributes.items():
                if isinstance(key, str):
                    walk(child, f"{prefix}{key}.", depth + 1)
        elif isinstance(value, Mapping) and depth == 0:  # a plain state dict pickled into an archive
            for key, child in value.items():
                if isinstance(key, str):
                    walk(child, f"{key}.", depth + 1)

    walk(obj, "", 0)
    if not tensors:
        raise EncoderUnavailableError(f"{path}: the TorchScript archive holds no tensors")
    return tensors


def _torch_load(path: Path) -> dict:
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" (it asks for {found.group(1)})" if found else ""
            raise EncoderUnavailableError(f"{path}: refused: loading it would run code from its pickle{what}; only "
                                          "tensors are read from CLIP weight files") from None  # fmt: skip
        raise EncoderUnavailableError(f"cannot read CLIP weights {path}: {text.splitlines()[0][:160]}") from None
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise EncoderUnavailableError(f"cannot read CLIP weights {path}: {first}") from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise EncoderUnavailableError(f"{path}: not a CLIP state dict (holds a {type(obj).__name__})")
    return dict(obj)


def read_clip_state(path: Path) -> dict:
    """All tensors of a CLIP weights file (safetensors, ``torch.save``, or TorchScript), by their names."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise EncoderUnavailableError(f"cannot read CLIP weights {path}: {exc.strerror or exc}") from None
    if len(head) == 9 and head[8:9] == b"{":  # safetensors: u64 header length, then the JSON header
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise EncoderUnavailableError(f"cannot read CLIP weights {path}: {str(exc).splitlines()[0][:160]}") \
                from None  # fmt: skip
    if is_torchscript(path):
        return read_torchscript_tensors(path)
    return _torch_load(path)


def expected_text_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """The text tower's tensor names and shapes for an open_clip architecture (from its config; no import)."""
    config = check_clip_architecture(arch)
    text = config.get("text_cfg") or {}
    width, layers = int(text.get("width", 512)), int(text.get("layers", 12))
    ctx, vocab = int(text.get("context_length", 77)), int(text.get("vocab_size", 49408))
    hidden, embed = int(width * float(text.get("mlp_ratio", 4.0))), int(config.get("embed_dim", 512))
    shapes: dict[str, tuple[int, ...]] = {
        "token_embedding.weight": (vocab, width), "positional_embedding": (ctx, width), "ln_final.weight": (width,),
        "ln_final.bias": (width,), "text_projection": (width, embed),
    }  # fmt: skip
    for i in range(layers):
        p = f"transformer.resblocks.{i}."
        shapes.update({p + "ln_1.weight": (width,), p + "ln_1.bias": (width,), p + "ln_2.weight": (width,),
                       p + "ln_2.bias": (width,), p + "attn.in_proj_weight": (3 * width, width),
                       p + "attn.in_proj_bias": (3 * width,), p + "attn.out_proj.weight": (width, width),
                       p + "attn.out_proj.bias": (width,), p + "mlp.c_fc.weight": (hidden, width),
                       p + "mlp.c_fc.bias": (hidden,), p + "mlp.c_proj.weight": (width, hidden),
                       p + "mlp.c_proj.bias": (width,)})  # fmt: skip
    return shapes


def text_tower(state: Mapping[str, object], arch: str, where: str) -> dict:
    """The text-tower tensors of a CLIP state dict, under open_clip's names, each checked against ``arch``."""
    import torch

    expected = expected_text_shapes(arch)
    found: dict = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            continue
        for prefix in _PREFIXES:
            key = key.removeprefix(prefix)
        if key in expected:
            found[key] = value.detach().contiguous()
    missing = sorted(set(expected) - set(found), key=_order)
    if missing:
        more = f" (+{len(missing) - 6} more)" if len(missing) > 6 else ""
        raise EncoderUnavailableError(
            f"{where}: not a CLIP {arch} text tower: missing {', '.join(missing[:6])}{more}",
            hint="give OpenAI's ViT-B-32.pt or open_clip's ViT-B-32 (openai) weights",
        )
    wrong = [f"{k} {tuple(v.shape)} (expected {expected[k]})" for k, v in found.items()
             if tuple(v.shape) != expected[k]]  # fmt: skip
    if wrong:
        raise EncoderUnavailableError(f"{where}: CLIP tensors of the wrong shape for {arch}: {', '.join(wrong[:4])}")
    if not all(v.is_floating_point() for v in found.values()):
        raise EncoderUnavailableError(f"{where}: CLIP text weights must be floating point")
    return found


def _order(key: str) -> tuple:
    m = _BLOCK.match(key)
    return (1, int(m.group(1)), m.group(2)) if m else (0, 0, key)
