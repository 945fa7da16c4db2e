"""Text encoders (registry, normalisation, cache, offline errors) and the retrieval index (`motiongpt index`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.data.prepare import read_records
from motiongpt_cli.errors import MotionGPTError
from motiongpt_cli.text.embedding_cache import EmbeddingCache
from motiongpt_cli.text.encoder_weights import EncoderUnavailableError
from motiongpt_cli.text.encoders import load_encoder, parse_encoder_name
from motiongpt_cli.text.index import (
    RetrievalIndex,
    RetrievalIndexError,
    build_index,
    load_index,
    training_pairs,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def minilm(embedding_cache):
    return load_encoder("minilm", cache_dir=embedding_cache)


def test_minilm_gives_unit_384d_vectors_and_sensible_similarities(minilm):
    v = minilm.encode(["a person waves", "someone waves a hand", "a person sits down on a chair"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 2] + 0.1  # waving is nearer waving than sitting


def test_duplicates_and_order_are_preserved(minilm):
    v = minilm.encode(["b", "a", "b"])
    np.testing.assert_array_equal(v[0], v[2])
    assert not np.allclose(v[0], v[1])
    assert minilm.encode([]).shape == (0, 384)


def test_cache_serves_repeated_texts_without_the_model(tmp_path, minilm, monkeypatch):
    enc = load_encoder("minilm", cache_dir=tmp_path)
    first = enc.encode(["wave right hand", "turn left"])
    calls = []
    monkeypatch.setattr(type(enc), "_encode_batch", lambda self, texts: calls.append(texts) or 1 / 0)
    again = load_encoder("minilm", cache_dir=tmp_path).encode(["turn left", "wave right hand"])
    assert calls == []
    np.testing.assert_array_equal(again, first[::-1])
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    assert set(cache.get_many("minilm", ["turn left", "unknown"])) == {"turn left"}
    assert cache.get_many("st:other", ["turn left"]) == {}  # keyed by encoder too


def test_a_corrupt_cache_file_only_disables_the_cache(tmp_path):
    (tmp_path / "embeddings.sqlite").write_bytes(b"not a database" * 100)
    v = load_encoder("minilm", cache_dir=tmp_path).encode(["walk"])
    assert v.shape == (1, 384)


def test_clip_code_path_with_random_weights():
    enc = load_encoder("clip:ViT-B-32/random")
    v = enc.encode(["a person walks", "a person jumps"])
    assert enc.dim == 512 and v.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(load_encoder("clip:ViT-B-32/random").encode(["a person walks"])[0], v[0], atol=1e-5)


@pytest.mark.parametrize(
    "name, message",
    [("word2vec", "unknown text encoder"), ("clip:ViT-B-32", "clip:<arch>/<pretrained>"), ("st:", "unknown")],
)
def test_bad_encoder_names(name, message):
    with pytest.raises(MotionGPTError, match=message):
        parse_encoder_name(name)


def test_unavailable_encoders_say_how_to_get_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderUnavailableError) as info:
        load_encoder(f"st:{tmp_path / 'no-such-model'}")
    assert "minilm" in info.value.hint
    with pytest.raises(EncoderUnavailableError, match="no architecture"):
        load_encoder("clip:NoSuchNet/openai")


# ----------------------------------------------------------------------------------------------- index
def test_training_pairs_are_unique_train_split_pairs(tiny_corpus):
    records = read_records(tiny_corpus)
    pairs = training_pairs(records)
    assert len(pairs) == len(set(pairs)) > 0
    train_captions = {c.strip() for r in records if r["split"] == "train" for c in r["high"]}
    assert {h for h, _ in pairs} == train_captions
    other = {c.strip() for r in records if r["split"] != "train" for c in r["high"]} - train_captions
    assert not other & {h for h, _ in pairs}


def test_index_round_trip_and_search_matches_brute_force(tiny_corpus, minilm, tmp_path):
    records = read_records(tiny_corpus)
    index = build_index(records, minilm, fingerprint="abc")
    path = index.save(tmp_path / "idx.npz")
    loaded = load_index(path)
    assert (loaded.encoder, loaded.dim, loaded.fingerprint, len(loaded)) == ("minilm", 384, "abc", len(index))
    assert loaded.high == index.high and loaded.low == index.low
    np.testing.assert_allclose(loaded.embeddings, index.embeddings, atol=2e-3)  # stored as float16
    q = minilm.encode(["a person waves with the right hand"])
    hits = loaded.search(q, 5)[0]
    brute = np.argsort(-(loaded.embeddings @ q[0]), kind="stable")[:5]
    assert [h.row for h in hits] == brute.tolist()
    assert all(a.similarity >= b.similarity for a, b in zip(hits, hits[1:], strict=False))
    assert len(loaded.search(q, 10_000)[0]) == len(loaded)  # k larger than the index
    with np.load(path, allow_pickle=False) as data:  # no pickles anywhere
        assert json.loads(str(data["meta"]))["normalized"] is True


def test_index_records_each_pairs_duration_and_round_trips_it(tiny_corpus, minilm, tmp_path):
    records = read_records(tiny_corpus)
    index = build_index(records, minilm)
    # by hand: each pair's clips at 20 fps, the median when a pair comes from several clips
    clips: dict[tuple[str, str], list[float]] = {}
    for rec in records:
        if rec["split"] == "train":
            for caption in rec["high"]:
                pair = (caption.strip(), (rec["low"] or caption).strip())
                clips.setdefault(pair, []).append((rec["end"] - rec["start"]) / 20)
    expected = np.array([np.median(clips[pair]) for pair in zip(index.high, index.low, strict=True)])
    assert index.seconds is not None and index.seconds.shape == (len(index),) and index.seconds.dtype == np.float32
    np.testing.assert_allclose(index.seconds, expected, rtol=1e-6)
    assert len(set(index.seconds.tolist())) > 1  # the corpus's clips differ in length
    loaded = load_index(index.save(tmp_path / "idx.npz"))
    np.testing.assert_array_equal(loaded.seconds, index.seconds)
    hits = loaded.search(minilm.encode(["a person waves"]), 3)[0]
    assert [h.seconds for h in hits] == [float(loaded.seconds[h.row]) for h in hits]
    # a record without start/end: no durations at all, rather than some
    partial = [dict(r) for r in records]
    del partial[0]["start"]
    assert build_index(partial, minilm).seconds is None


def test_an_index_without_durations_still_loads(tmp_path):
    old = RetrievalIndex(np.eye(3, dtype=np.float32), ["a", "b", "c"], ["x", "y", "z"], "minilm")
    path = old.save(tmp_path / "old.npz")
    with np.load(path, allow_pickle=False) as data:
        assert "seconds" not in data.files and json.loads(str(data["meta"]))["format_version"] == 1
    loaded = load_index(path)
    assert loaded.seconds is None
    assert [h.seconds for h in loaded.search(np.eye(3)[0], 2)[0]] == [None, None]
    from motiongpt_cli.paths import embedded_asset

    shipped = embedded_asset("index.npz")
    if shipped is not None:  # the embedded model's index is built with durations and its low texts' embeddings
        index = load_index(shipped)
        assert index.seconds is not None and len(index.seconds) == len(index.high)
        assert 1.9 <= float(index.seconds.min()) and float(index.seconds.max()) <= 10.0  # the corpus's clip lengths
        assert float(np.ptp(index.seconds)) > 5.0  # real per-clip durations, not one constant
        assert index.low_embeddings is not None and len(index.low_embeddings) == len(index.low_texts)
    bad = RetrievalIndex(np.eye(3, dtype=np.float32), ["a", "b", "c"], ["x", "y", "z"], "minilm",
                         seconds=np.array([1.0, 2.0], dtype=np.float32))  # fmt: skip
    with pytest.raises(RetrievalIndexError, match="durations"):
        load_index(bad.save(tmp_path / "bad.npz"))


def test_index_refuses_other_encoders_and_bad_files(tmp_path):
    index = RetrievalIndex(np.eye(3, dtype=np.float32), ["a", "b", "c"], ["x", "y", "z"], "minilm")
    with pytest.raises(RetrievalIndexError, match="built with encoder 'minilm'"):
        index.check_encoder("clip:ViT-B-32/openai")
    with pytest.raises(RetrievalIndexError, match="dimension"):
        index.search(np.ones(4), 1)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(RetrievalIndexError, match="not a motiongpt retrieval index"):
        load_index(bad)
    with pytest.raises(RetrievalIndexError, match="not found"):
        load_index(tmp_path / "missing.npz")


def test_cli_index_build_and_query(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    out = tmp_path / "idx.npz"
    r = runner.invoke(app, ["--no-config", "index", "build", str(tiny_corpus), "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["encoder"] == "minilm" and summary["dim"] == 384 and summary["entries"] == len(load_index(out))
    r = runner.invoke(app, ["--no-config", "index", "build", str(tiny_corpus), "-o", str(out)])
    assert r.exit_code == 1 and "exists" in r.stderr  # no silent overwrite
    r = runner.invoke(app, ["--no-config", "index", "query", "a person waves", "--index", str(out), "-k", "3",
                            "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["rank"] for row in rows] == [1, 2, 3]
    assert rows[0]["similarity"] >= rows[1]["similarity"] >= rows[2]["similarity"]
    assert "wave" in rows[0]["high"]
    r = runner.invoke(app, ["--no-config", "index", "query", "walk", "--index", str(out), "--encoder",
                            "clip:ViT-B-32/openai"])  # fmt: skip
    assert r.exit_code == 1 and "built with encoder 'minilm'" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, ["--no-config", "index", "query", "  ", "--index", str(out)])
    assert r.exit_code == 2 and r.stderr.startswith("Error: empty text")
