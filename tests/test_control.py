"""Timelines and editing: window layout, joint-window sampling, inpainting, edit masks, timeline files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motiongpt_cli.control.edit import EditSpec, body_joints, joint_features, parse_ranges, parse_time
from motiongpt_cli.control.timeline import Timeline, TimelineSegment, load_timeline, timeline_from_texts
from motiongpt_cli.control.windows import layout_windows, split_spans
from motiongpt_cli.diffusion.denoiser import DenoiserConfig, MotionDenoiser
from motiongpt_cli.diffusion.sampler import Inpainting, SamplingOptions, Window, sample, sample_windows
from motiongpt_cli.diffusion.schedule import NoiseSchedule
from motiongpt_cli.errors import InvalidValueError, MotionGPTError
from motiongpt_cli.motion.features import FOOT_CONTACTS, RIC, ROOT_HEIGHT


def _tiny(max_frames=24, **kw) -> MotionDenoiser:
    torch.manual_seed(0)
    cfg = DenoiserConfig(width=32, layers=1, heads=2, ff_size=64, dropout=0.0, max_frames=max_frames,
                         conditioning="dual", high_dim=8, low_dim=6, **kw)  # fmt: skip
    return MotionDenoiser(cfg).eval()


def _generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


# ---------------------------------------------------------------------------------------------------- windows


@pytest.mark.parametrize("lengths", [[60, 40, 40], [40], [500], [196, 12, 300], [30] * 24])
@pytest.mark.parametrize("transition", [0, 1, 10, 11])
def test_windows_cover_every_frame_once_in_weight(lengths, transition):
    windows = layout_windows(lengths, transition, 196)
    total = sum(lengths)
    weight = np.zeros(total)
    for w in windows:
        assert 0 <= w.start < w.end <= total and w.frames <= 196
        assert bool((w.weight > 0).all()) and bool((w.weight <= 1).all())
        weight[w.start : w.end] += w.weight.numpy()
    np.testing.assert_allclose(weight, 1.0, atol=1e-6)  # a cross-fade: the weights of a frame sum to 1
    # linear cost: every frame once, plus one transition per seam
    assert sum(w.frames for w in windows) == total + (len(windows) - 1) * transition
    # each window follows its own segment's text, in order
    spans = np.repeat(np.arange(len(lengths)), lengths)
    for w in windows:
        middle = (w.start + w.end) // 2
        assert w.text == spans[middle]


def test_long_segments_are_cut_into_equal_pieces():
    pieces = split_spans([1200], 10, 196)
    assert len(pieces) == 7 and all(b - a in (171, 172) for a, b, _ in pieces)
    with pytest.raises(InvalidValueError, match="transition"):
        split_spans([100], 98, 196)


def test_one_window_equals_plain_sampling():
    """The joint-window sampler over one full window is the plain sampler: same model calls, same noise."""
    model, schedule = _tiny(), NoiseSchedule(100)
    g = torch.Generator().manual_seed(1)
    high, low = torch.randn(2, 8, generator=g), torch.randn(2, 6, generator=g)
    for sampler, eta in (("ddim", 0.0), ("ddpm", 0.0), ("ddim", 0.5)):
        options = SamplingOptions(steps=5, sampler=sampler, guidance=2.5, eta=eta)
        plain = sample(model, schedule, high, low, torch.tensor([20, 20]), options, _generators([3, 4]))
        window = Window(0, 20, torch.ones(20), 0)
        joint = sample_windows(model, schedule, high, low, [window], 20, options, _generators([3, 4]), samples=2)
        torch.testing.assert_close(joint, plain, rtol=1e-5, atol=1e-5)


def test_windows_blend_their_own_texts():
    """A two-window motion: far from the seam each half equals what its own text gives in the window alone."""
    model, schedule = _tiny(), NoiseSchedule(100)
    options = SamplingOptions(steps=4, guidance=1.0)
    high, low = torch.randn(2, 8), torch.randn(2, 6)
    windows = layout_windows([16, 16], 4, 24)
    x = sample_windows(model, schedule, high, low, windows, 32, options, _generators([0]))
    assert x.shape == (1, 32, 263) and bool(torch.isfinite(x).all())
    swapped = sample_windows(model, schedule, high.flip(0), low.flip(0), windows, 32, options, _generators([0]))
    assert not torch.allclose(x[:, :10], swapped[:, :10])  # the texts matter, per window


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_final_blend_cross_fades_windows_sampled_alone(sampler):
    """blend="final": each window is exactly the plain sampler on its own text and its own noise (the sample's
    generator draws the windows' noise in window order), and the motion is their weighted cross-fade."""
    model, schedule = _tiny(), NoiseSchedule(100)
    options = SamplingOptions(steps=4, sampler=sampler, guidance=2.5)
    g = torch.Generator().manual_seed(5)
    high, low = torch.randn(2, 8, generator=g), torch.randn(2, 6, generator=g)
    windows = layout_windows([16, 16], 4, 24)
    assert [(w.start, w.end) for w in windows] == [(0, 18), (14, 32)]
    x = sample_windows(model, schedule, high, low, windows, 32, options, _generators([7]), blend="final")
    if sampler == "ddim":  # no noise after the first draw: replay each window's initial noise in sample()
        draws = _generators([7])[0]
        alone = []
        for k, w in enumerate(windows):
            n0 = torch.randn(w.frames, 263, generator=draws)[None]
            alone.append(sample(model, schedule, high[k : k + 1], low[k : k + 1], torch.tensor([w.frames]), options,
                                noise=[n0] * (1 + options.steps))[0])  # fmt: skip
        expected = torch.zeros(32, 263)
        for w, a in zip(windows, alone, strict=True):
            expected[w.start : w.end] += a * w.weight[:, None]
        torch.testing.assert_close(x[0], expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(x[0, :14], alone[0][:14], rtol=1e-5, atol=1e-5)  # only window 1 there
        torch.testing.assert_close(x[0, 18:], alone[1][4:], rtol=1e-5, atol=1e-5)
    joint = sample_windows(model, schedule, high, low, windows, 32, options, _generators([7]))
    assert not torch.allclose(x, joint)  # the joint sampler couples the windows
    again = sample_windows(model, schedule, high, low, windows, 32, options, _generators([7]), blend="final")
    assert torch.equal(x, again)
    with pytest.raises(MotionGPTError, match="blend must be joint or final"):
        sample_windows(model, schedule, high, low, windows, 32, options, blend="mean")
    with pytest.raises(MotionGPTError, match="inpainting needs"):
        sample_windows(model, schedule, high, low, windows, 32, options, blend="final",
                       inpaint=Inpainting(torch.zeros(1, 32, 263), torch.zeros(1, 32, 263, dtype=torch.bool)))


def test_context_frames_are_seen_with_weight_zero():
    windows = layout_windows([30, 30, 30], 6, 60, context=5)
    assert [(w.start, w.end) for w in windows] == [(0, 38), (22, 68), (52, 90)]
    weight = np.zeros(90)
    for w in windows:
        weight[w.start : w.end] += w.weight.numpy()
    np.testing.assert_allclose(weight, 1.0, atol=1e-6)
    assert windows[1].weight[:5].sum() == 0 and windows[1].weight[-5:].sum() == 0
    assert all(w.frames <= 60 for w in layout_windows([400], 6, 60, context=5))
    with pytest.raises(InvalidValueError, match="twice the context"):
        layout_windows([100], 10, 60, context=10)


def test_window_errors():
    model, schedule = _tiny(), NoiseSchedule(100)
    options = SamplingOptions(steps=2)
    high, low = torch.randn(1, 8), torch.randn(1, 6)
    with pytest.raises(MotionGPTError, match="does not fit"):
        sample_windows(model, schedule, high, low, [Window(0, 30, torch.ones(30), 0)], 30, options)
    with pytest.raises(MotionGPTError, match="uncovered"):
        sample_windows(model, schedule, high, low, [Window(0, 10, torch.ones(10), 0)], 12, options)
    with pytest.raises(MotionGPTError, match="text rows"):
        sample_windows(model, schedule, high, low, [Window(0, 10, torch.ones(10), 1)], 10, options)


# ---------------------------------------------------------------------------------------------------- inpainting


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_inpainting_keeps_known_values_exactly_and_changes_the_rest(sampler):
    model, schedule = _tiny(), NoiseSchedule(100)
    options = SamplingOptions(steps=6, sampler=sampler)
    high, low = torch.randn(1, 8), torch.randn(1, 6)
    values = torch.randn(1, 20, 263)
    mask = torch.zeros(1, 20, 263, dtype=torch.bool)
    mask[:, :5] = True  # a prefix
    mask[:, :, RIC] = True  # and some columns everywhere
    free = sample(model, schedule, high, low, torch.tensor([20]), options, _generators([2]))
    inpaint = Inpainting(values, mask)
    x = sample(model, schedule, high, low, torch.tensor([20]), options, _generators([2]), inpaint=inpaint)
    assert torch.equal(x[mask], values[mask])
    assert not torch.allclose(x[~mask], free[~mask])  # the free part sees the known part
    nothing = Inpainting(values, torch.zeros_like(mask))
    torch.testing.assert_close(sample(model, schedule, high, low, torch.tensor([20]), options, _generators([2]),
                                      inpaint=nothing), free)  # fmt: skip
    joint = sample_windows(model, schedule, high, low, layout_windows([40], 6, 24), 40, options, _generators([2]),
                           inpaint=Inpainting(torch.randn(1, 40, 263), torch.ones(1, 40, 263, dtype=torch.bool)))
    assert joint.shape == (1, 40, 263)
    with pytest.raises(MotionGPTError, match="shape"):
        sample(model, schedule, high, low, torch.tensor([20]), options, inpaint=Inpainting(values[:, :10], mask))


# ---------------------------------------------------------------------------------------------------- edit specs


def test_times_and_ranges():
    assert parse_time("2s") == 40 and parse_time("1.5") == 30 and parse_time("40f") == 40 and parse_time(".5s") == 10
    assert parse_ranges("6-8s, 0-2s") == [(0, 40), (120, 160)]
    assert parse_ranges("0-40f") == [(0, 40)]
    for bad, message in (("2-1s", "reversed"), ("0-2s,1-3s", "overlap"), ("0-2s-3", "START-END"), ("a-2", "time"),
                         ("1.5f-3f", "whole"), ("", "START-END")):  # fmt: skip
        with pytest.raises(InvalidValueError, match=message):
            parse_ranges(bad)


def test_body_parts_partition_the_features():
    upper, lower = joint_features(body_joints("upper")), joint_features(body_joints("lower"))
    assert not (upper & lower).any() and (upper | lower).all()  # every feature belongs to exactly one joint
    assert lower[ROOT_HEIGHT].all() and lower[FOOT_CONTACTS].all() and lower[:4].all()  # root and contacts: lower
    assert upper.sum() == 13 * (3 + 6 + 3) and lower.sum() == 4 + 8 * (3 + 6) + 9 * 3 + 4
    per_joint = sum(joint_features([j]).astype(int) for j in range(22))
    assert (per_joint == 1).all()
    assert body_joints("left_wrist, 21") == [20, 21]
    with pytest.raises(InvalidValueError, match="unknown joint"):
        body_joints("tail")


def test_edit_masks():
    known, source = EditSpec(keep=[(0, 40), (120, 160)]).known_mask(160, 160)
    assert known[:40].all() and known[120:].all() and not known[40:120].any()
    assert (source == np.arange(160)).all()
    known, source = EditSpec(prefix=40).known_mask(100, 200)  # continue forward to 10 s
    assert known[:40].all() and not known[40:].any() and (source[:40] == np.arange(40)).all()
    known, source = EditSpec(suffix=40).known_mask(100, 120)  # the input's last 2 s close the output
    assert known[80:].all() and not known[:80].any() and (source[80:] == np.arange(60, 100)).all()
    known, _ = EditSpec(body="upper").known_mask(50, 50)
    assert (known == ~joint_features(body_joints("upper"))[None]).all()
    known, _ = EditSpec(keep=[(0, 10)], body="upper").known_mask(50, 50)
    assert known[:10].all() and (known[10:] == ~joint_features(body_joints("upper"))[None]).all()
    for spec, frames, message in (
        (EditSpec(), (50, 50), "nothing to edit"),
        (EditSpec(prefix=60), (50, 80), "only 50"),
        (EditSpec(prefix=30, suffix=20), (50, 50), "keep all"),
        (EditSpec(keep=[(0, 60)]), (50, 50), "outside"),
        (EditSpec(prefix=10, body="upper"), (50, 50), "cannot be combined"),
        (EditSpec(body="upper"), (50, 60), "length"),
        (EditSpec(keep=[(0, 50)]), (50, 50), "keeps everything"),
    ):
        with pytest.raises(InvalidValueError, match=message):
            spec.known_mask(*frames)


# ---------------------------------------------------------------------------------------------------- timelines


def test_timeline_lengths_and_errors():
    timeline = timeline_from_texts(["walk forward", "sit down", "wave"], [3, 2, 2])
    assert timeline.lengths() == [60, 40, 40] and timeline.transition_frames == 20  # the 1 s default
    assert timeline.blend == "crossfade"
    assert timeline_from_texts(["a", "b"], [2]).lengths() == [40, 40]
    with pytest.raises(InvalidValueError, match="2 durations for 3"):
        timeline_from_texts(["a", "b", "c"], [2, 2])
    for segments, message in (([], "at least one"), ([TimelineSegment("a", 0)], "seconds"),
                              ([TimelineSegment("a", -2)], "seconds"), ([TimelineSegment(" ", 2)], "empty text"),
                              ([TimelineSegment("a", 2), TimelineSegment("b", 0.3)], "at least 0.5"),
                              ([TimelineSegment("a", 2), TimelineSegment("b", 0.6)], "shorter than")):  # fmt: skip
        with pytest.raises(InvalidValueError, match=message):
            Timeline(segments, transition=0.75).lengths()
    with pytest.raises(InvalidValueError, match="transition"):
        Timeline([TimelineSegment("a", 2)], transition=-1).lengths()
    with pytest.raises(InvalidValueError, match="blend must be crossfade or joint"):
        Timeline([TimelineSegment("a", 2)], blend="average").lengths()


def test_timeline_files(tmp_path):
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"high": "walk forward", "seconds": 3}\n\n{"high": "wave", "low": "wave the right hand", '
                     '"seconds": 2.5}\n')  # fmt: skip
    timeline = load_timeline(jsonl)
    assert [s.high for s in timeline.segments] == ["walk forward", "wave"] and timeline.lengths() == [60, 50]
    assert timeline.segments[1].low == "wave the right hand" and timeline.transition == 1.0
    assert timeline.blend == "crossfade" and load_timeline(jsonl, blend="joint").blend == "joint"
    toml = tmp_path / "t.toml"
    toml.write_text('transition = 1.0\n[[segment]]\nhigh = "sit down"\nseconds = 2\n[[segment]]\nhigh = "stand up"\n'
                    'seconds = 2\n')  # fmt: skip
    assert load_timeline(toml).transition == 1.0 and load_timeline(toml, transition=0.25).transition == 0.25
    toml.write_text('blend = "joint"\n' + toml.read_text())
    assert load_timeline(toml).blend == "joint" and load_timeline(toml, blend="crossfade").blend == "crossfade"
    for name, content, message in (
        ("a.jsonl", '{"high": "x", "seconds": 2, "speed": 3}\n', "unknown key"),
        ("b.jsonl", '{"high": "x"}\n', "needs 'high' and 'seconds'"),
        ("c.jsonl", "not json\n", "not a JSON"),
        ("d.toml", "[[segment]]\nhigh = 'x'\nseconds = 0\n", "seconds"),
        ("e.toml", "transitions = 1\n", "unknown key"),
        ("f.toml", "x = [", "not valid TOML"),
        ("g.jsonl", "", "at least one"),
        ("h.jsonl", "[1, 2]\n", "not a table"),
        ("i.toml", "blend = 'mean'\n[[segment]]\nhigh = 'x'\nseconds = 2\n", "blend must be"),
    ):
        (tmp_path / name).write_text(content)
        with pytest.raises(InvalidValueError, match=message):
            load_timeline(tmp_path / name)
    with pytest.raises(MotionGPTError, match="cannot read"):
        load_timeline(tmp_path / "missing.jsonl")


# ---------------------------------------------------------------------------------------------------- API and CLI


@pytest.fixture(scope="module")
def pipe(eval_models):
    """The tiny trained model of conftest as a pipeline (its own index proposes low-level texts)."""
    from motiongpt_cli.api import load_pipeline

    return load_pipeline(eval_models[1], device="cpu")


@pytest.fixture(scope="module")
def source_clip(pipe, tmp_path_factory):
    out = tmp_path_factory.mktemp("source")
    (motion,) = pipe.generate("a person walks", low="walk", frames=60, steps=4, seed=0)
    return motion.save(out / "walk.npz"), motion


def test_timeline_api_records_segments_and_reproduces(pipe, tmp_path):
    from motiongpt_cli.motion.io import load_npz

    segments = [("walk forward", 3), {"high": "sit down", "seconds": 2, "low": "sit"}, ("wave", 2.5, "wave")]
    motions = pipe.generate_timeline(segments, n=2, steps=4, seed=3, out_dir=tmp_path, formats=["npz", "bvh"])
    assert [m.frames for m in motions] == [150, 150]
    first = motions[0]
    assert [(s.start, s.end, s.high) for s in first.segments] == [(0, 60, "walk forward"), (60, 100, "sit down"),
                                                                  (100, 150, "wave")]  # fmt: skip
    assert first.segments[1].low == "sit" and first.segments[0].low  # proposed from the model's own index
    assert first.text_high == "walk forward -> sit down -> wave" and "retrieval" in first.low_source
    saved = load_npz(first.paths["npz"])
    assert saved.segments == first.segments and first.paths["bvh"].stat().st_size > 0
    again = pipe.generate_timeline(segments, n=2, steps=4, seed=3)
    np.testing.assert_array_equal(again[1].features, motions[1].features)  # a seed gives the same timelines
    assert not np.allclose(motions[0].features, motions[1].features)  # and its samples differ
    joint = pipe.generate_timeline(segments, n=1, steps=4, seed=3, blend="joint")
    assert pipe.plan_timeline(segments, steps=4, seed=3, blend="joint").timeline.blend == "joint"
    assert joint[0].frames == 150 and not np.allclose(joint[0].features, motions[0].features)


def test_timeline_position_and_heading_are_continuous(pipe):
    """The root's step between frames at a seam is no larger than inside the segments (no jump in position)."""
    (motion,) = pipe.generate_timeline([("walk forward", 3), ("turn around", 3), ("walk forward", 3)], steps=4,
                                       seed=1, low=False)  # fmt: skip
    root = motion.joints[:, 0]
    steps = np.linalg.norm(np.diff(root, axis=0), axis=1)
    inside = np.percentile(steps, 95)
    for seam in (60, 120):
        assert steps[seam - 2 : seam + 2].max() <= 2 * inside  # no jump of the root at a seam
    assert np.isfinite(motion.joints).all() and motion.frames == 180


def test_long_timeline_costs_what_its_segments_cost(monkeypatch):
    """A 60 s timeline works with the embedded model; its denoiser work (frames through the model, all steps) is at
    most 1.2x that of its twelve 5 s segments sampled one by one."""
    from motiongpt_cli.api import load_pipeline
    from motiongpt_cli.diffusion import sampler as sampler_module

    pipe = load_pipeline(device="cpu")
    frames_seen = []
    original = sampler_module.guided_x0

    def counting(model, x, *args, **kwargs):
        frames_seen.append(x.shape[0] * x.shape[1])
        return original(model, x, *args, **kwargs)

    monkeypatch.setattr(sampler_module, "guided_x0", counting)
    (motion,) = pipe.generate_timeline([("walk forward", 5)] * 12, steps=2, seed=0, low=False)
    assert motion.frames == 1200 and len(motion.segments) == 12
    timeline_work = sum(frames_seen)
    frames_seen.clear()
    for k in range(12):
        pipe.generate("walk forward", low=False, seconds=5, steps=2, seed=k)
    assert timeline_work <= 1.2 * sum(frames_seen)


def test_timeline_errors(pipe, tmp_path):
    with pytest.raises(InvalidValueError, match="needs 'high' and 'seconds'"):
        pipe.plan_timeline([{"high": "walk"}])
    with pytest.raises(InvalidValueError, match="must be"):
        pipe.plan_timeline(["walk"])
    with pytest.raises(InvalidValueError, match="seconds"):
        pipe.plan_timeline([("walk", -1)])
    (tmp_path / "x-00.npz").write_bytes(b"")
    with pytest.raises(MotionGPTError, match="exists"):
        pipe.plan_timeline([("x", 2)], low=False, out_dir=tmp_path, formats=["npz"])
    assert (tmp_path / "x-00.npz").read_bytes() == b""


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_edit_keeps_the_input_exactly(pipe, source_clip, tmp_path, sampler):
    from motiongpt_cli.control.edit import joint_features

    path, source = source_clip
    (inbetween,) = pipe.edit(path, "a person jumps", low="jump", keep="0-1s,2-3s", steps=4, seed=1, sampler=sampler)
    np.testing.assert_array_equal(inbetween.features[:20], source.features[:20])
    np.testing.assert_array_equal(inbetween.features[40:], source.features[40:])
    assert not np.allclose(inbetween.features[20:40], source.features[20:40])
    (upper,) = pipe.edit(path, "a person waves", low="wave right hand", body="upper", steps=4, seed=1,
                         sampler=sampler)  # fmt: skip
    kept = ~joint_features(body_joints("upper"))
    np.testing.assert_array_equal(upper.features[:, kept], source.features[:, kept])
    assert not np.allclose(upper.features[:, ~kept], source.features[:, ~kept])
    # the lower body's joints (root-relative, on the kept root trajectory) are the input's
    lower = [0, 1, 2, 4, 5, 7, 8, 10, 11]
    np.testing.assert_allclose(upper.joints[:, lower], source.joints[:, lower], atol=1e-5)
    (longer,) = pipe.edit(path, "a person jumps", low="jump", prefix="2s", seconds=15, steps=4, seed=1,
                          sampler=sampler)  # fmt: skip
    assert longer.frames == 300  # longer than the model's maximum: windows
    np.testing.assert_array_equal(longer.features[:40], source.features[:40])
    np.testing.assert_allclose(longer.joints[:40], source.joints[:40], atol=1e-5)  # the prefix is where it was
    (back,) = pipe.edit(path, "a person jumps", low="jump", suffix="1s", steps=4, seed=1, sampler=sampler)
    np.testing.assert_array_equal(back.features[-20:], source.features[-20:])
    assert "suffix 20 frames" in back.edit


def test_edit_reads_features_and_joints_and_refuses_bad_input(pipe, source_clip, tmp_path):
    _, source = source_clip
    np.save(tmp_path / "f.npy", source.features)
    np.save(tmp_path / "j.npy", source.joints)
    (from_features,) = pipe.edit(tmp_path / "f.npy", "jump", low="jump", keep="0-1s", steps=2, seed=0)
    np.testing.assert_array_equal(from_features.features[:20], source.features[:20])
    (from_joints,) = pipe.edit(tmp_path / "j.npy", "jump", low="jump", keep="0-1s", steps=2, seed=0)
    assert from_joints.frames == source.frames
    bad = source.features.copy()
    bad[3, 5] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "shape.npy", np.zeros((10, 7), np.float32))
    for name, message in (("nan.npy", "NaN"), ("shape.npy", "neither features"), ("missing.npz", "not found")):
        with pytest.raises(MotionGPTError, match=message):
            pipe.plan_edit(tmp_path / name, "jump", keep="0-1s")
    with pytest.raises(InvalidValueError, match="only 60"):
        pipe.plan_edit(tmp_path / "f.npy", "jump", prefix="5s", seconds=8)


def test_edit_cli(pipe, source_clip, tmp_path):
    from typer.testing import CliRunner

    from motiongpt_cli.cli import app
    from motiongpt_cli.motion.io import load_npz

    path, source = source_clip
    runner = CliRunner()
    base = ["--no-config", "edit", str(path), "a person jumps", "--model", str(pipe.loaded.path), "--steps", "2",
            "-o", str(tmp_path), "--seed", "0"]  # fmt: skip
    result = runner.invoke(app, base + ["--keep", "0-1s,2-3s", "--low", "jump", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout.splitlines()[-1])
    edited = load_npz(manifest["outputs"]["npz"])
    np.testing.assert_array_equal(edited.features[:20], source.features[:20])
    assert edited.edit.startswith("keep frames 0-20; keep frames 40-60") and manifest["edit"] == edited.edit
    bad = ((["--keep", "0-2s,1-3s"], "overlap"), (["--keep", "0-9s"], "outside"), (["--prefix", "9s"], "only 60"),
           (["--body", "tail"], "unknown joint"), ([], "nothing"), (["--keep", "1-0"], "reversed"),
           (["--prefix", "1s", "--body", "upper"], "combined"))  # fmt: skip
    for args, message in bad:
        result = runner.invoke(app, base + args + ["--overwrite"])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output
    result = runner.invoke(app, base + ["--keep", "0-1s"])  # the first run's files exist
    assert result.exit_code != 0 and "exists" in result.stderr
    assert load_npz(manifest["outputs"]["npz"]).edit == edited.edit  # and are untouched


def test_timeline_cli(pipe, tmp_path):
    from typer.testing import CliRunner

    from motiongpt_cli.cli import app
    from motiongpt_cli.motion.io import load_npz

    runner = CliRunner()
    base = ["--no-config", "generate", "walk forward", "wave", "--model", str(pipe.loaded.path), "--steps", "2",
            "--seed", "0", "-o", str(tmp_path)]  # fmt: skip
    result = runner.invoke(app, base + ["--timeline", "--seconds", "2,1.5", "--low", "walk", "--json", "--format",
                                        "npz"])  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout.splitlines()[-1])
    assert manifest["frames"] == 70 and [(s["start"], s["end"]) for s in manifest["segments"]] == [(0, 40), (40, 70)]
    saved = load_npz(manifest["outputs"]["npz"])
    assert [s.low for s in saved.segments] == ["walk", "walk"] and saved.sampler == "ddim"
    joint = runner.invoke(app, base + ["--timeline", "--seconds", "2,1.5", "--low", "walk", "--blend", "joint",
                                       "--transition", "0.5", "--json", "--format", "npz", "--overwrite"])  # fmt: skip
    assert joint.exit_code == 0, joint.output
    assert not np.allclose(load_npz(manifest["outputs"]["npz"]).features, saved.features)
    for args, message in ((["--blend", "joint"], "--blend applies to --timeline"),
                          (["--timeline", "--seconds", "2", "--blend", "mean"], "must be crossfade or joint"),
                          (["--transition", "1"], "--transition applies to --timeline")):  # fmt: skip
        result = runner.invoke(app, base + args)
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output, result.output
