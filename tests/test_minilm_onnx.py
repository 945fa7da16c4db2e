"""MiniLM through ONNX Runtime (text/minilm_onnx.py): the same rows as sentence-transformers, exported once and
cached, and every way it can fail falls back to sentence-transformers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (a dependency of motiongpt-cli)")
pytest.importorskip("onnx", reason="onnx is not installed (a dependency of motiongpt-cli, for the one-time export)")

from motiongpt_cli.text import minilm_onnx  # noqa: E402
from motiongpt_cli.text.encoder_weights import minilm_path  # noqa: E402
from motiongpt_cli.text.minilm_onnx import MiniLMEncoder  # noqa: E402

FOLDER = Path(minilm_path())
TEXTS = ["a person waves", "wave right hand", "", "A MAN JUMPS!", "greet a friend with a hug",
         " ".join(["walk forward and then turn around to the left"] * 40)]  # fmt: skip  (over 256 tokens)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("onnx-cache")
    assert minilm_onnx.load_onnx_minilm(FOLDER, cache) is not None
    return cache


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(FOLDER), device="cpu")
    return model.encode(TEXTS, batch_size=len(TEXTS), normalize_embeddings=True, convert_to_numpy=True)


def test_rows_match_sentence_transformers(exported, reference):
    model = minilm_onnx.load_onnx_minilm(FOLDER, exported)
    rows = model.encode(TEXTS)
    assert rows.shape == (len(TEXTS), 384) and rows.dtype == np.float32
    assert np.abs(rows - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    # a text alone gives its row of the batch (padding does not leak into the mean)
    assert np.abs(model.encode([TEXTS[0]])[0] - rows[0]).max() < 1e-5
    # the long text was truncated at 256 tokens, as sentence-transformers does (not at the file's own 128)
    assert len(model.tokenizer.encode(TEXTS[-1]).ids) == 256


def test_encoder_uses_the_export_and_reports_it(exported, reference):
    encoder = MiniLMEncoder("minilm", str(FOLDER), onnx_cache=exported)
    rows = encoder.encode(TEXTS[:2])
    assert encoder.runtime == "onnx" and encoder.dim == 384
    assert np.abs(rows - reference[:2]).max() < 1e-5


def test_the_export_is_reused_not_redone(exported, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(minilm_onnx, "export_minilm", fail)
    assert minilm_onnx.load_onnx_minilm(FOLDER, exported) is not None
    (file,) = (exported / "onnx").glob("*.onnx")
    assert file.name.startswith("all-MiniLM-L6-v2-") and file.stat().st_size > 80e6
    assert not list((exported / "onnx").glob(".*tmp*"))  # no temporary left behind


def test_no_onnxruntime_falls_back_to_sentence_transformers(exported, monkeypatch, reference):
    monkeypatch.setattr(minilm_onnx, "onnx_runtime_installed", lambda: False)
    encoder = MiniLMEncoder("minilm", str(FOLDER), onnx_cache=exported)
    rows = encoder.encode(TEXTS[:2])
    assert encoder.runtime == "sentence-transformers"
    assert np.abs(rows - reference[:2]).max() < 1e-6


def test_a_corrupt_export_is_dropped_with_a_warning(exported, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(exported, cache)
    (file,) = (cache / "onnx").glob("*.onnx")
    file.write_bytes(b"not an onnx model")
    encoder = MiniLMEncoder("minilm", str(FOLDER), onnx_cache=cache)
    with pytest.warns(UserWarning, match="could not be loaded"):
        encoder.load()
    assert encoder.runtime == "sentence-transformers" and not file.exists()


@pytest.mark.slow
def test_an_inexact_export_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(minilm_onnx, "EXPORT_TOLERANCE", -1.0)
    with pytest.warns(UserWarning, match="export failed.*differs"):
        assert minilm_onnx.load_onnx_minilm(FOLDER, tmp_path) is None
    assert not list((tmp_path / "onnx").iterdir())


def test_other_pipelines_are_not_taken_for_minilm(tmp_path):
    assert minilm_onnx.plain_mean_pooling_folder(FOLDER) == 256
    folder = tmp_path / "cls"
    shutil.copytree(FOLDER, folder)
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    assert minilm_onnx.plain_mean_pooling_folder(folder) is None
    assert minilm_onnx.load_onnx_minilm(folder, tmp_path) is None
    assert minilm_onnx.plain_mean_pooling_folder(tmp_path / "missing") is None


def test_a_warm_process_never_imports_transformers(exported):
    code = ("import sys; from pathlib import Path; from motiongpt_cli.text.encoder_weights import minilm_path;"
            "from motiongpt_cli.text.minilm_onnx import MiniLMEncoder;"
            f"e = MiniLMEncoder('minilm', minilm_path(), onnx_cache=Path({str(exported)!r})); e.encode(['hi there']);"
            "heavy = ('torch', 'transformers', 'sentence_transformers');"
            "print(e.runtime, sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["onnx", "[]"]
