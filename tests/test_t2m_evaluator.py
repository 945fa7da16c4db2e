"""The standard T2M evaluator: the official checkpoint layout, the real vocabulary pickles, word features."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from conftest import write_t2m_evaluator
from motiongpt_cli.errors import MotionGPTError
from motiongpt_cli.evaluation.t2m import (
    POS_CATEGORIES,
    MotionEncoderBiGRUCo,
    MovementConvEncoder,
    TextEncoderBiGRUCo,
    WordVectorizer,
    find_t2m_files,
    load_t2m_evaluator,
    safe_load_pickle,
)

# the official finest.tar's state-dict shapes (../shared/reference/humanml3d-and-t2m-evaluator.md, sec. 3.2)
OFFICIAL = {
    "movement_encoder": {"main.0.weight": (512, 259, 4), "main.0.bias": (512,), "main.3.weight": (512, 512, 4),
                         "main.3.bias": (512,), "out_net.weight": (512, 512), "out_net.bias": (512,)},
    "motion_encoder": {"hidden": (2, 1, 1024), "input_emb.weight": (1024, 512), "input_emb.bias": (1024,),
                       **{f"gru.{k}_l0{r}": s for r in ("", "_reverse") for k, s in
                          (("weight_ih", (3072, 1024)), ("weight_hh", (3072, 1024)), ("bias_ih", (3072,)),
                           ("bias_hh", (3072,)))},
                       "output_net.0.weight": (1024, 2048), "output_net.0.bias": (1024,),
                       "output_net.1.weight": (1024,), "output_net.1.bias": (1024,),
                       "output_net.3.weight": (512, 1024), "output_net.3.bias": (512,)},
    "text_encoder": {"hidden": (2, 1, 512), "pos_emb.weight": (300, 15), "pos_emb.bias": (300,),
                     "input_emb.weight": (512, 300), "input_emb.bias": (512,),
                     **{f"gru.{k}_l0{r}": s for r in ("", "_reverse") for k, s in
                        (("weight_ih", (1536, 512)), ("weight_hh", (1536, 512)), ("bias_ih", (1536,)),
                         ("bias_hh", (1536,)))},
                     "output_net.0.weight": (512, 1024), "output_net.0.bias": (512,),
                     "output_net.1.weight": (512,), "output_net.1.bias": (512,),
                     "output_net.3.weight": (512, 512), "output_net.3.bias": (512,)},
}  # fmt: skip


@pytest.fixture(scope="module")
def evaluator_dir(reference_dir):
    folder = reference_dir / "t2m-evaluator"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


def _modules():
    torch.manual_seed(0)
    return {"text_encoder": TextEncoderBiGRUCo(), "motion_encoder": MotionEncoderBiGRUCo(),
            "movement_encoder": MovementConvEncoder()}  # fmt: skip


def test_architecture_matches_the_official_state_dict_layout():
    for key, module in _modules().items():
        assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == OFFICIAL[key], key


@pytest.fixture
def official(tmp_path, reference_dir):
    return tmp_path / "t2m", write_t2m_evaluator(tmp_path / "t2m", reference_dir)


@pytest.fixture
def glove(official):
    return official[0] / "glove"


@pytest.fixture
def checkpoint(official):
    return official[0] / "finest.tar", official[1]


def test_real_vocabulary_reads_with_the_restricted_unpickler(evaluator_dir, tmp_path):
    words = safe_load_pickle(evaluator_dir / "our_vab_words.pkl")
    index = safe_load_pickle(evaluator_dir / "our_vab_idx.pkl")
    assert len(words) == len(index) == 4199 and words[:3] == ["sos", "eos", "unk"]
    assert all(index[w] == i for i, w in enumerate(words))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(MotionGPTError, match="not a plain-data pickle"):
        safe_load_pickle(tmp_path / "evil.pkl")


def test_word_features_follow_the_dataset_rules(glove):
    wv = WordVectorizer.load(glove)
    vectors, pos, length = wv.sentence(["a/DET", "man/NOUN", "walk/VERB", "left/ADV", "zzyzx/NOUN"])
    assert vectors.shape == (22, 300) and pos.shape == (22, 15) and length == 7  # sos + 5 + eos
    cats = [POS_CATEGORIES[i] for i in pos.argmax(1)]
    assert cats[:7] == ["OTHER", "DET", "NOUN", "Act_VIP", "Loc_VIP", "OTHER", "OTHER"]
    np.testing.assert_array_equal(vectors[0], wv.vectors[wv.index["sos"]])
    np.testing.assert_array_equal(vectors[5], wv.vectors[wv.index["unk"]])  # unknown word
    np.testing.assert_array_equal(vectors[6], wv.vectors[wv.index["eos"]])
    np.testing.assert_array_equal(vectors[7:], np.repeat(wv.vectors[[wv.index["unk"]]], 15, axis=0))  # padding
    _, _, long_length = wv.sentence(["walk/VERB"] * 30)
    assert long_length == 22


def test_load_official_layout_and_encode(checkpoint, evaluator_dir, glove):
    path, modules = checkpoint
    ev = load_t2m_evaluator(path, evaluator_dir, glove)
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((n, 263)).astype(np.float32) for n in (196, 120, 40)]
    emb = ev.encode_motion(feats)
    assert emb.shape == (3, 512)
    # the same as running the official modules by hand, one motion at a time, evaluator-normalised and zero-padded
    # to 196 frames as the official loaders do
    mean, std = np.load(evaluator_dir / "t2m_mean.npy"), np.load(evaluator_dir / "t2m_std.npy")
    for i, f in enumerate(feats):
        padded = np.zeros((196, 263), dtype=np.float32)
        padded[: len(f)] = (f - mean) / std
        x = torch.from_numpy(padded)[None]
        with torch.no_grad():
            ref = modules["motion_encoder"].eval()(modules["movement_encoder"].eval()(x[..., :-4]),
                                                   torch.tensor([len(f) // 4]))  # fmt: skip
        np.testing.assert_allclose(emb[i], ref[0].numpy(), rtol=1e-4, atol=1e-4)
    tokens = [["a/DET", "man/NOUN", "walk/VERB"], ["a/DET", "person/NOUN", "jump/VERB", "up/ADP"]]
    standard = ev.encode_text(tokens)
    legacy = ev.encode_text(tokens, legacy_lengths=True)
    assert standard.shape == (2, 512) and not np.allclose(standard, legacy)  # MDM bug #182 changes the embedding


def test_bad_checkpoints_are_clear_errors(tmp_path, checkpoint, evaluator_dir):
    path, modules = checkpoint
    state = torch.load(path, weights_only=True)
    del state["movement_encoder"]
    torch.save(state, tmp_path / "partial.tar")
    with pytest.raises(MotionGPTError, match="missing movement_encoder"):
        load_t2m_evaluator(tmp_path / "partial.tar", evaluator_dir)
    state["movement_encoder"] = MovementConvEncoder(input_size=263).state_dict()
    torch.save(state, tmp_path / "wrong.tar")
    with pytest.raises(MotionGPTError, match="does not fit"):
        load_t2m_evaluator(tmp_path / "wrong.tar", evaluator_dir)
    (tmp_path / "junk.tar").write_bytes(b"not a checkpoint")
    with pytest.raises(MotionGPTError, match="not a T2M evaluator checkpoint"):
        load_t2m_evaluator(tmp_path / "junk.tar", evaluator_dir)
    with pytest.raises(MotionGPTError, match="not found"):
        load_t2m_evaluator(tmp_path / "none.tar", evaluator_dir)
    with pytest.raises(MotionGPTError, match="t2m_mean"):
        load_t2m_evaluator(path, tmp_path)


def test_batches_of_32_give_the_same_embeddings(checkpoint, evaluator_dir, glove):
    ev = load_t2m_evaluator(checkpoint[0], evaluator_dir, glove)
    rng = np.random.default_rng(1)
    feats = [rng.standard_normal((int(n), 263)).astype(np.float32) for n in rng.integers(10, 50, size=40) * 4]
    together = ev.encode_motion(feats)  # two batches: 32 + 8
    alone = np.concatenate([ev.encode_motion([f]) for f in feats[30:34]])
    assert together.shape == (40, 512)
    np.testing.assert_allclose(together[30:34], alone, rtol=1e-4, atol=1e-4)
    with pytest.raises(MotionGPTError, match="word/POS tokens"):
        ev.encode_captions(["a man walks"], [None])
    np.testing.assert_array_equal(ev.encode_captions(["x"], [["a/DET", "man/NOUN"]]),
                                  ev.encode_text([["a/DET", "man/NOUN"]]))  # fmt: skip


def test_official_download_layouts_are_found(tmp_path, official):
    flat, _ = official
    assert find_t2m_files(flat) == (flat / "finest.tar", flat, flat / "glove")
    assert find_t2m_files(flat / "finest.tar") == (flat / "finest.tar", flat, flat / "glove")
    # MDM: t2m/text_mot_match/model/finest.tar, t2m/Comp_v6_KLD01/meta/mean.npy, and glove/ beside t2m/
    root = tmp_path / "mdm"
    (root / "t2m/text_mot_match/model").mkdir(parents=True)
    (root / "t2m/Comp_v6_KLD01/meta").mkdir(parents=True)
    (root / "t2m/text_mot_match/model/finest.tar").write_bytes((flat / "finest.tar").read_bytes())
    for name in ("mean", "std"):
        (root / f"t2m/Comp_v6_KLD01/meta/{name}.npy").write_bytes((flat / f"t2m_{name}.npy").read_bytes())
    found = find_t2m_files(root / "t2m")
    assert found == (root / "t2m/text_mot_match/model/finest.tar", root / "t2m/Comp_v6_KLD01/meta", None)
    (root / "glove").symlink_to(flat / "glove")
    assert find_t2m_files(root / "t2m")[2] == root / "t2m/../glove"
    assert load_t2m_evaluator(*find_t2m_files(root / "t2m")).encode_text([["walk/VERB"]]).shape == (1, 512)
    assert find_t2m_files(tmp_path / "mdm" / "t2m" / "Comp_v6_KLD01") is None
    (flat / "t2m_mean.npy").unlink()
    with pytest.raises(MotionGPTError, match="t2m_mean"):
        find_t2m_files(flat)
    (flat / "glove" / "our_vab_data.npy").unlink()
    with pytest.raises(MotionGPTError, match="missing the GloVe file"):
        WordVectorizer.load(flat / "glove")
