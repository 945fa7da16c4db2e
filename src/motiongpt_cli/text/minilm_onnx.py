"""all-MiniLM-L6-v2 through ONNX Runtime: the same embeddings as sentence-transformers, without importing it.

Importing sentence-transformers (and with it transformers) costs several seconds, more than torch itself, so the
first text a run has not embedded before paid for it. Here the packaged weights are exported once to ONNX
(``$cache/onnx/all-MiniLM-L6-v2-<sha256[:16] of model.safetensors>.onnx``, about 90 MB) and every later process
runs that file with ``onnxruntime`` and the ``tokenizers`` package: tens of milliseconds to load instead of seconds
(``benchmarks/bench_startup.py``, docs/generate.md).

The export is the only step that imports transformers (and ``onnx``). It is checked before it is kept: the exported
graph must reproduce the PyTorch model's pooled, normalised rows on probe texts within :data:`EXPORT_TOLERANCE`;
otherwise (or when ``onnxruntime``/``onnx`` are not installed, or the folder is not the plain Transformer -> mean
pooling -> Normalize pipeline) :func:`onnx_minilm_available` is false and the encoder falls back to
sentence-transformers. Measured against sentence-transformers on this corpus's texts: max abs difference ~1e-7.

The pipeline, as ``sentence_bert_config.json`` and ``1_Pooling/config.json`` of the package fix it: WordPiece
tokens truncated to ``max_seq_length`` (256; the tokenizer file's own 128 is sentence-transformers' to override, and
it does), padded to the longest text of the batch; BERT's last hidden state; the mean over unpadded tokens; L2
normalisation.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np

from ..errors import MotionGPTWarning
from .encoder_weights import file_sha256
from .encoders import SentenceTransformerEncoder

EXPORT_TOLERANCE = 1e-5
PROBE_TEXTS = ("a person waves", "wave right hand", "a man walks forward, turns around and sits down on a chair",
               "")  # fmt: skip
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_runtime_installed() -> bool:
    """Whether onnxruntime is importable (checked without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def plain_mean_pooling_folder(folder: Path) -> int | None:
    """``max_seq_length`` when ``folder`` is a sentence-transformers folder of exactly Transformer -> mean pooling ->
    Normalize (what this module reproduces), else None."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if kinds != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        return None
    if config.get("do_lower_case") or not (folder / "tokenizer.json").is_file():
        return None
    return int(config.get("max_seq_length", 256))


def onnx_path(folder: Path, cache: Path, digests=None) -> Path:
    """Where the export of ``folder``'s weights lives under the cache folder ``cache`` (named by their sha256, which
    ``digests``, an :class:`~.embedding_cache.EmbeddingCache`, remembers so a warm process does not re-read 90 MB)."""
    return cache / "onnx" / f"all-MiniLM-L6-v2-{file_sha256(folder / 'model.safetensors', digests)[:16]}.onnx"


def mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``hidden: (N, tokens, d)``, ``mask: (N, tokens)`` 0/1 -> (N, d) float32 mean over unmasked tokens, unit rows."""
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return (pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class OnnxMiniLM:
    """A loaded ONNX export: ``encode(texts) -> (N, 384)`` float32 unit rows."""

    def __init__(self, folder: Path, model_file: Path, max_seq_length: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_seq_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of the batch
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                            "token_type_ids": np.zeros_like(ids)})  # fmt: skip
        return mean_pool_normalise(hidden, mask)


def export_minilm(folder: Path, target: Path, max_seq_length: int) -> float:
    """Export ``folder``'s BERT to ``target`` (atomically) and return the largest difference of its pooled rows from
    the PyTorch model's on :data:`PROBE_TEXTS`; the file is kept only when that is within
    :data:`EXPORT_TOLERANCE`. Imports transformers and onnx (seconds, once per machine)."""
    import torch
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    from ..atomic import atomic_path

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    model = BertModel.from_pretrained(str(folder)).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: D102
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state  # fmt: skip

    wrapper = LastHidden(model).eval()
    dummy = torch.ones(2, 8, dtype=torch.long)
    axes = {k: {0: "batch", 1: "tokens"} for k in (*_INPUTS, "last_hidden_state")}
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(wrapper, (dummy, dummy, torch.zeros_like(dummy)), str(tmp), input_names=list(_INPUTS),
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes=axes)  # fmt: skip
        onnx_model = OnnxMiniLM(folder, Path(tmp), max_seq_length)
        encoded = onnx_model.tokenizer.encode_batch(list(PROBE_TEXTS))
        ids = torch.tensor([e.ids for e in encoded])
        mask = torch.tensor([e.attention_mask for e in encoded])
        with torch.no_grad():
            hidden = wrapper(ids, mask, torch.zeros_like(ids)).numpy()
        error = float(np.abs(onnx_model.encode(list(PROBE_TEXTS)) - mean_pool_normalise(hidden, mask.numpy())).max())
        if not error <= EXPORT_TOLERANCE:
            raise ValueError(f"the ONNX export differs from the PyTorch model by {error:.2e}")
    return error


def load_onnx_minilm(folder: Path, cache: Path, digests=None) -> OnnxMiniLM | None:
    """The ONNX Runtime MiniLM for ``folder`` (exported into ``cache`` on first use), or None when this path is not
    available here (packages missing, another pipeline, a failed or inexact export: a warning says which)."""
    max_seq_length = plain_mean_pooling_folder(folder)
    if max_seq_length is None or not onnx_runtime_installed():
        return None
    target = onnx_path(folder, cache, digests)
    if not target.is_file():
        if importlib.util.find_spec("onnx") is None:
            return None
        try:
            export_minilm(folder, target, max_seq_length)
        except Exception as exc:  # any exporter failure only means: use sentence-transformers
            warnings.warn(f"MiniLM ONNX export failed ({type(exc).__name__}: {str(exc)[:200]}); "
                          "using sentence-transformers", MotionGPTWarning, stacklevel=2)  # fmt: skip
            return None
    try:
        return OnnxMiniLM(folder, target, max_seq_length)
    except Exception as exc:  # a truncated or foreign file in the cache: export again next time
        target.unlink(missing_ok=True)
        warnings.warn(f"MiniLM ONNX file {target} could not be loaded ({type(exc).__name__}); "
                      "using sentence-transformers", MotionGPTWarning, stacklevel=2)  # fmt: skip
        return None


class MiniLMEncoder(SentenceTransformerEncoder):
    """The default ``minilm``: the packaged all-MiniLM-L6-v2 through ONNX Runtime (:mod:`.minilm_onnx`; exported
    once into ``onnx_cache``, a cache folder), else through sentence-transformers. Both give the same rows to ~1e-7;
    ``runtime`` says which one loaded (``onnx`` or ``sentence-transformers``)."""

    def __init__(self, name: str, path: str, *, device: str = "cpu", onnx_cache: Path | None = None) -> None:
        super().__init__(name, path, device=device)
        self.onnx_cache = onnx_cache
        self.onnx = None
        self.runtime: str | None = None

    def _load(self) -> int:
        if self.device == "cpu" and self.onnx_cache is not None:
            self.onnx = load_onnx_minilm(Path(self.path_or_name), Path(self.onnx_cache), self.cache)
            if self.onnx is not None:
                self.runtime = "onnx"
                return self.onnx.dim
        self.runtime = "sentence-transformers"
        return super()._load()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        if self.onnx is not None:
            return self.onnx.encode(texts)
        return super()._encode_batch(texts)
