"""BABEL alignment rules and the dual-text dataset, on real index.csv rows and a BABEL-format JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from motiongpt_cli.data.babel import clip_time_range, swap_left_right
from motiongpt_cli.data.dataset import DualTextDataset, GroundTruthLeakError, collate
from motiongpt_cli.data.humanml3d import amass_key, read_index
from motiongpt_cli.data.prepare import build_records, prepare_dataset, read_records
from motiongpt_cli.errors import MotionFormatError, OutputExistsError

CLIPS = {  # id -> frames of its (fake) features
    "012314": 171,  # Eyes_Japan_Dataset, frames 149..320, trimmed by 60 frames
    "M012314": 171,
    "000000": 117,  # KIT, frames 0..117
    "000001": 60,  # HumanAct12: no BABEL
    "000015": 152,  # MPI_HDM05 (trim 60): only sequence-level labels
    "007975": 84,  # known NaN clip
}

BABEL = {
    "1": {
        "babel_sid": 1,
        "feat_p": "EyesJapanDataset/Eyes_Japan_Dataset/yamaoka/tennis-15-first service-yamaoka_poses.npz",
        "dur": 30.0,
        "seq_ann": {"labels": [{"raw_label": "tennis", "proc_label": "play tennis", "act_cat": ["sport"]}]},
        "frame_ann": {
            "labels": [
                {"raw_label": "walking", "proc_label": "walk", "act_cat": ["walk"], "start_t": 0.0, "end_t": 10.0},
                {"raw_label": "turn", "proc_label": "turn left", "act_cat": ["turn"], "start_t": 18.9, "end_t": 25.0},
                {
                    "raw_label": "swing",
                    "proc_label": "swing racket with right hand",
                    "act_cat": ["swing"],
                    "start_t": 10.0,
                    "end_t": 12.0,
                },
                {"raw_label": "wave", "proc_label": "wave", "act_cat": ["wave"], "start_t": 11.0, "end_t": 11.5},
                {"raw_label": "stand", "proc_label": "stand", "act_cat": ["stand"], "start_t": 19.0, "end_t": 30.0},
            ]
        },
    },
    "2": {
        "babel_sid": 2,
        "feat_p": "KIT/KIT/3/kick_high_left02_poses.npz",
        "dur": 5.85,
        "seq_ann": {"labels": [{"raw_label": "kick", "proc_label": "kick", "act_cat": ["kick"]}]},
        "frame_ann": {
            "labels": [
                {"raw_label": "step", "proc_label": "step forward", "act_cat": ["step"], "start_t": 0.0, "end_t": 1.2},
                {
                    "raw_label": "kick",
                    "proc_label": "kick high with left leg",
                    "act_cat": ["kick"],
                    "start_t": 1.2,
                    "end_t": 3.5,
                },
                {"raw_label": "stand", "proc_label": "stand", "act_cat": ["stand"], "start_t": 3.5, "end_t": 5.85},
            ]
        },
    },
    "3": {
        "babel_sid": 3,
        "feat_p": "MPIHDM05/MPI_HDM05/mm/HDM_mm_08-01_01_120_poses.npz",
        "dur": 40.0,
        "seq_ann": {"labels": [{"raw_label": "walking around", "proc_label": "walk", "act_cat": ["walk"]}]},
        "frame_ann": None,
    },
}


@pytest.fixture()
def corpus(tmp_path: Path, humanml3d_dir: Path) -> Path:
    """A HumanML3D-layout folder with real index.csv rows, fake features and texts, and BABEL JSON."""
    root = tmp_path / "h3d"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    real_rows = read_index(humanml3d_dir / "index.csv")
    lines = ["source_path,start_frame,end_frame,new_name"]
    for clip in ("012314", "000000", "000001", "000015", "007975"):
        row = real_rows[clip]
        lines.append(f"{row.source_path},{row.start_frame},{row.end_frame},{clip}.npy")
    (root / "index.csv").write_text("\n".join(lines) + "\n")
    rng = np.random.default_rng(0)
    for clip, frames in CLIPS.items():
        feats = rng.normal(size=(frames, 263)).astype(np.float32)
        if clip == "007975":
            feats[5, 5] = np.nan
        np.save(root / "new_joint_vecs" / f"{clip}.npy", feats)
        caption = f"a person does thing {clip} with the left hand#a/DET person/NOUN#0.0#0.0"
        extra = "\nthe person kicks#the/DET person/NOUN kick/VERB#1.0#3.0" if clip == "000000" else ""
        (root / "texts" / f"{clip}.txt").write_text(caption + extra + "\n")
    (root / "train.txt").write_text("012314\nM012314\n000000\n")
    (root / "val.txt").write_text("000001\n")
    (root / "test.txt").write_text("000015\n007975\nmissing_clip\n")
    np.save(root / "Mean.npy", np.zeros(263, np.float32))
    np.save(root / "Std.npy", np.ones(263, np.float32))
    babel = root / "babel"
    babel.mkdir()
    (babel / "train.json").write_text(json.dumps(BABEL))
    return root


def _by_id(records):
    return {r["id"]: r for r in records}


def test_real_index_rows_map_to_babel_time(humanml3d_dir):
    rows = read_index(humanml3d_dir / "index.csv")
    # Eyes_Japan drops 3 s (60 frames at 20 fps) before slicing 149:320
    assert clip_time_range(rows["012314"], 171) == pytest.approx(((60 + 149) / 20, (60 + 320) / 20))
    assert clip_time_range(rows["000000"], 117) == pytest.approx((0.0, 117 / 20))
    # HumanAct12 rows say end -1: the whole file
    assert clip_time_range(rows["000001"], 60) == (0.0, 3.0)
    assert amass_key(rows["012314"].source_path) == amass_key(BABEL["1"]["feat_p"], babel=True)
    assert amass_key(rows["000015"].source_path) == ("mpihdm05", "mm/HDM_mm_08-01_01_120_poses")


def test_alignment_rules(corpus):
    records, stats = build_records(corpus, corpus / "babel")
    recs = _by_id(records)
    # overlapping frame labels sorted by start time; 'walk' ends before the trimmed clip starts; 'stand' only touches
    assert recs["012314"]["low"] == "swing racket with right hand, wave, turn left"
    assert recs["012314"]["low_source"] == "babel" and recs["012314"]["babel_sid"] == "1"
    # the mirror swaps left and right
    assert recs["M012314"]["low"] == "swing racket with left hand, wave, turn right"
    # whole clip and a caption segment (1.0-3.0 s) get their own ranges
    assert recs["000000"]["low"] == "step forward, kick high with left leg, stand"
    assert recs["000000@20-60"]["low"] == "step forward, kick high with left leg"
    assert recs["000000@20-60"]["high"] == ["the person kicks"]
    assert recs["000000@20-60"]["tokens"] == ["the/DET person/NOUN kick/VERB"]  # parallel to high
    assert recs["000000"]["tokens"] == ["a/DET person/NOUN"]
    assert (recs["000000@20-60"]["start"], recs["000000@20-60"]["end"]) == (20, 60)
    # a sequence without frame labels contributes its sequence labels
    assert recs["000015"]["low"] == "walk" and recs["000015"]["split"] == "test"
    # no BABEL sequence: fallback, with no placeholder text
    assert recs["000001"]["low"] == "" and recs["000001"]["low_source"] == "fallback"
    assert "None" not in json.dumps(records).replace('"babel_sid": null', "")
    assert stats.skipped == {"known NaN clip": 1, "missing motion": 1}
    assert stats.coverage("train") == 1.0 and stats.coverage("val") == 0.0 and stats.coverage("test") == 1.0


def test_without_the_trim_the_labels_would_differ(corpus):
    """Control: shifting the clip by the 3 s trim is what excludes 'walk'."""
    index = corpus / "index.csv"
    index.write_text(index.read_text().replace("Eyes_Japan_Dataset", "Eyes_Japan_Other"))
    babel = corpus / "babel" / "train.json"
    babel.write_text(babel.read_text().replace("Eyes_Japan_Dataset", "Eyes_Japan_Other"))
    records, _ = build_records(corpus, corpus / "babel")
    assert _by_id(records)["012314"]["low"] == "walk, swing racket with right hand, wave"


def test_prepare_writes_jsonl_atomically_and_reads_back(corpus, tmp_path):
    out = tmp_path / "data" / "dataset.jsonl"
    out.parent.mkdir()
    stats = prepare_dataset(corpus, corpus / "babel", out)
    records = read_records(out)
    assert len(records) == stats.records == 6
    assert all(Path(r["motion"]).is_file() for r in records)
    with pytest.raises(OutputExistsError):
        prepare_dataset(corpus, corpus / "babel", out)
    assert [p.name for p in out.parent.iterdir()] == ["dataset.jsonl"]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda root: (root / "babel" / "train.json").write_text("{not json"), "invalid JSON"),
        (lambda root: (root / "babel" / "train.json").write_text('{"1": {"dur": 3}}'), "needs a 'feat_p'"),
        (lambda root: (root / "index.csv").write_text("a,b\n1,2\n"), "expected header"),
        (lambda root: (root / "texts" / "000000.txt").write_text("no separators here\n"), "caption#tokens#start#end"),
        (lambda root: (root / "train.txt").unlink(), "split file not found"),
    ],
)
def test_bad_inputs_name_the_file(corpus, breakage, message):
    breakage(corpus)
    with pytest.raises(MotionFormatError, match=message):
        build_records(corpus, corpus / "babel")


def test_swap_left_right():
    assert swap_left_right("Turn left, then right; walk clockwise") == "Turn right, then left; walk counterclockwise"
    assert swap_left_right("leftover rightful") == "leftover rightful"


# ----------------------------------------------------------------------------------------------- dataset
@pytest.fixture()
def records(corpus, tmp_path):
    out = tmp_path / "d.jsonl"
    prepare_dataset(corpus, corpus / "babel", out)
    return read_records(out)


def test_test_split_ground_truth_needs_explicit_request(records):
    mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
    with pytest.raises(GroundTruthLeakError):
        DualTextDataset(records, mean, std, split="test")
    ds = DualTextDataset(records, mean, std, split="test", low_source="none", min_frames=2)
    assert ds[0]["low"] is None
    ds = DualTextDataset(records, mean, std, split="test", low_source="gt", min_frames=2)
    assert ds[0]["low"] == "walk"


def test_items_crop_normalise_pad_and_mask(records, corpus):
    mean = np.full(263, 0.5, np.float32)
    std = np.full(263, 2.0, np.float32)
    ds = DualTextDataset(records, mean, std, split="train", max_frames=196, seed=3)
    assert len(ds) == 4 and not ds.skipped  # the 40-frame caption segment is just long enough (40 <= len)
    lengths = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            n = item["length"]
            lengths.add((ds.records[i]["id"], n))
            assert n % 4 == 0 and item["mask"].sum() == n and not item["mask"][n:].any()
            assert (item["motion"][n:] == 0).all()
            raw = np.load(ds.records[i]["motion"])[ds.records[i]["start"] : ds.records[i]["end"]]
            # the crop is a contiguous window of the normalised clip
            window = item["motion"][:n].numpy() * 2.0 + 0.5
            starts = [s for s in range(len(raw) - n + 1) if np.allclose(raw[s : s + n], window, atol=1e-5)]
            assert starts
    full = {rid: {n for r, n in lengths if r == rid} for rid, _ in lengths}
    assert full["012314"] == {168, 164}  # 171 frames: 42 units, or 41 with probability 1/3
    batch = collate([ds[0], ds[1]])
    assert batch["motion"].shape == (2, 196, 263) and batch["length"].dtype.__str__() == "torch.int64"


def test_items_carry_the_drawn_captions_tokens(records):
    mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
    recs = [dict(r, high=["first caption", "second caption"], tokens=["first/ADJ caption/NOUN", ""])
            if r["split"] == "train" else r for r in records]  # fmt: skip
    ds = DualTextDataset(recs, mean, std, split="train")
    seen = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            expected = ["first/ADJ", "caption/NOUN"] if item["high"] == "first caption" else None  # "" -> None
            assert item["tokens"] == expected
            seen.add(item["high"])
    assert seen == {"first caption", "second caption"}
    old = [{k: v for k, v in r.items() if k != "tokens"} for r in records]  # datasets prepared before tokens
    assert DualTextDataset(old, mean, std, split="train")[0]["tokens"] is None
    assert collate([ds[0], ds[1]])["tokens"] == [ds[0]["tokens"], ds[1]["tokens"]]


def test_fallback_records_use_their_caption_and_items_are_reproducible(records):
    mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
    ds = DualTextDataset(records, mean, std, split="val")
    assert ds[0]["low_source"] == "fallback" and ds[0]["low"] == ds[0]["high"]
    again = DualTextDataset(records, mean, std, split="train", seed=1)
    first = DualTextDataset(records, mean, std, split="train", seed=1)
    assert all(torch_equal(first[i]["motion"], again[i]["motion"]) for i in range(len(first)))


def test_bad_motion_is_skipped_and_counted(records, corpus):
    np.save(corpus / "new_joint_vecs" / "000000.npy", np.zeros((117, 7), np.float32))
    ds = DualTextDataset(records, np.zeros(263), np.ones(263), split="train")
    assert ds.skipped["unreadable or invalid motion"] == 2 and len(ds) == 2


def torch_equal(a, b) -> bool:
    return bool((a == b).all())
