"""`motiongpt evaluate` and `motiongpt evaluate train-evaluator` on a tiny corpus, model and evaluator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY_EVALUATOR, write_t2m_evaluator
from motiongpt_cli.cli import app
from motiongpt_cli.data.prepare import load_dataset
from motiongpt_cli.errors import MotionGPTError
from motiongpt_cli.evaluation.learned import (
    contrastive_loss,
    load_evaluator,
    validation_metrics,
)
from motiongpt_cli.evaluation.runner import generated_count, parse_gate

runner = CliRunner()
@pytest.fixture(scope="module")
def corpus(eval_corpus):
    return eval_corpus


@pytest.fixture(scope="module")
def trained(eval_models):
    return eval_models


def test_contrastive_loss_by_hand():
    text = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    motion = torch.tensor([[1.0, 0.0], [10.0, 0.0]])
    # positives: d = 1 and 0; negatives (shift 1): text0-motion1 d = 10 -> 0, text1-motion0 d = 9 -> (10-9)^2 = 1
    assert contrastive_loss(text, motion, 1).item() == pytest.approx((1 + 0 + 0 + 1) / 4)


def test_trained_evaluator_round_trips_and_separates_pairs(trained, corpus, embedding_cache):
    result, _ = trained
    cfg = json.loads((result.path / "config.json").read_text())
    assert cfg["kind"] == "evaluator" and cfg["evaluator"]["embed_size"] == 16
    assert result.val == {"clips": cfg["validation"]["clips"]}  # too few val clips here for batches of 32
    ev = load_evaluator(result.path, cache_dir=embedding_cache)
    records, mean, std = load_dataset(corpus)
    val = validation_metrics(ev, records, mean, std, split="test")
    assert val["clips"] >= 32 and len(val["r_precision"]) == 3 and val["matching_score"] > 0
    rec = next(r for r in records if r["split"] == "test")
    feats = np.load(rec["motion"])[rec["start"] : rec["end"]]
    a = ev.encode_motion([feats[:80], feats[:40]])
    assert a.shape == (2, 16) and ev.encode_text(["a person walks"]).shape == (1, 16)
    np.testing.assert_allclose(ev.encode_motion([feats[:40]])[0], a[1], rtol=1e-4, atol=1e-5)  # batch-independent
    with pytest.raises(MotionGPTError, match="not an evaluator"):
        load_evaluator(result.path.parent / "nowhere")


def test_gate_parsing():
    g = parse_gate("fid>0.5")
    assert (g.metric, g.op, g.threshold) == ("fid", ">", 0.5) and g.holds(0.6) and not g.holds(0.5)
    assert parse_gate(" r1 <= 0.3 ").metric == "r_precision_top1"
    for bad in ("fid", "fid>>1", "speed>3", "fid>abc"):
        with pytest.raises(MotionGPTError):
            parse_gate(bad)


@pytest.fixture
def ev_cli(trained, corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    ev, model = trained
    return ["--no-config", "evaluate", "--model", str(model), "--data", str(corpus), "--evaluator", str(ev.path),
            "--replications", "2", "--steps", "3", "--limit", "32"]  # fmt: skip


def test_evaluate_is_deterministic_and_reports_both_rows(ev_cli, tmp_path):
    r1 = runner.invoke(app, [*ev_cli, "--json", str(tmp_path / "a.json")])
    assert r1.exit_code == 0, r1.output
    a = json.loads((tmp_path / "a.json").read_text())
    assert set(a["rows"]) == {"real", "generated"} and a["clips"] == 32 and a["replications"] == 2
    gen, real = a["rows"]["generated"], a["rows"]["real"]
    for row in (gen, real):
        assert set(row) == {"r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "mm_dist",
                            "diversity"}  # fmt: skip
        assert 0 <= row["r_precision_top1"]["mean"] <= row["r_precision_top2"]["mean"] <= row["r_precision_top3"][
            "mean"] <= 1
    assert real["fid"]["mean"] < gen["fid"]["mean"]  # a 4-step tiny model is far from real motion
    r2 = runner.invoke(app, [*ev_cli, "--json", str(tmp_path / "b.json")])
    assert r2.exit_code == 0 and json.loads((tmp_path / "b.json").read_text()) == a
    assert "R@1" in r1.output and "generated" in r1.output


def test_fail_if_names_the_failing_condition(ev_cli, tmp_path):
    ok = runner.invoke(app, [*ev_cli, "--replications", "1", "--fail-if", "fid>1e9", "--fail-if", "r3<-1"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, [*ev_cli, "--replications", "1", "--fail-if", "fid>0", "--json", "-"])
    assert bad.exit_code == 1 and "quality gate failed: fid = " in bad.stderr and "> 0" in bad.stderr
    assert json.loads(bad.stdout)["rows"]["generated"]["fid"]["mean"] > 0  # the results are still printed


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--limit", "8"], 2, "Invalid value for '--limit': must be an integer >= 32"),
        (["--low-source", "llm"], 2, "low_source must be gt, prompt or none"),
        (["--protocol", "old"], 2, "protocol must be standard or legacy"),
        (["--fail-if", "speed>1"], 1, "unknown metric"),
        (["--replications", "0"], 2, "Invalid value for '--replications' / '-r': must be an integer >= 1"),
        (["--mm-repeats", "5"], 2, "Invalid value for '--mm-repeats': must be an integer >= 10"),
        (["--guidance", "nan"], 2, "Invalid value for '--guidance'"),
        (["--sampler", "plms"], 2, "sampler must be auto, ddim, ddpm or lcm"),
        (["--eta", "2"], 2, "Invalid value for '--eta'"),
        (["--split", "nosuch"], 1, "R-precision needs at least 32"),
    ],
)
def test_evaluate_bad_input(ev_cli, extra, code, message):
    r = runner.invoke(app, [*ev_cli, *extra])
    assert r.exit_code == code and message in r.stderr and "Traceback" not in r.output


def test_train_evaluator_cli(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    cfg = tmp_path / "ev.toml"
    cfg.write_text("[evaluator]\n" + "\n".join(f"{k} = {v}" for k, v in TINY_EVALUATOR.items()) + "\n")
    base = ["--no-config", "evaluate", "train-evaluator", "--data", str(corpus), "-c", str(cfg), "-o",
            str(tmp_path / "ev")]  # fmt: skip
    r = runner.invoke(app, [*base, "--steps", "5", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 5 and (tmp_path / "ev" / "model.safetensors").is_file()
    r = runner.invoke(app, base)
    assert r.exit_code == 1 and "already exists" in r.output
    cfg.write_text("[evaluator]\nwidth = 3\n")
    r = runner.invoke(app, [*base, "--overwrite"])
    assert r.exit_code == 1 and "unknown evaluator settings: width" in r.output


@pytest.fixture(scope="module")
def t2m_dir(tmp_path_factory, reference_dir):
    folder = tmp_path_factory.mktemp("t2m-evaluator")
    write_t2m_evaluator(folder, reference_dir)
    return folder


def _run_json(args, path):
    r = runner.invoke(app, [*args, "--json", str(path)])
    assert r.exit_code == 0, r.output
    return json.loads(path.read_text()), r.output


def test_t2m_evaluator_with_both_protocols(ev_cli, t2m_dir, tmp_path):
    args = [*ev_cli, "--evaluator", str(t2m_dir), "--replications", "1"]
    standard, out = _run_json(args, tmp_path / "s.json")
    legacy, _ = _run_json([*args, "--protocol", "legacy"], tmp_path / "l.json")
    assert standard["evaluator"] == legacy["evaluator"] == "t2m"
    assert (standard["protocol"], legacy["protocol"]) == ("standard", "legacy") and "standard protocol" in out
    # real rows and every text-free metric agree; the legacy caption lengths change the text-motion distances
    assert standard["rows"]["real"] == legacy["rows"]["real"]
    for metric in ("fid", "diversity"):
        assert standard["rows"]["generated"][metric] == legacy["rows"]["generated"][metric]
    assert standard["rows"]["generated"]["mm_dist"] != legacy["rows"]["generated"]["mm_dist"]
    assert standard["rows"]["real"]["fid"]["mean"] < standard["rows"]["generated"]["fid"]["mean"]


def test_legacy_protocol_generates_at_most_1024_clips(trained, corpus, embedding_cache, monkeypatch):
    assert generated_count(5000, "legacy") == 1024 and generated_count(5000, "standard") == 5000
    assert generated_count(300, "legacy") == 300
    from motiongpt_cli.checkpoint import load_model
    from motiongpt_cli.evaluation import runner as runner_module
    from motiongpt_cli.text.encoders import load_encoder

    monkeypatch.setattr(runner_module, "LEGACY_GENERATED", 32)  # the cap at this corpus's scale
    ev, model_dir = trained
    encoders = {side: load_encoder("minilm", cache_dir=embedding_cache) for side in ("high", "low")}
    records, mean, std = load_dataset(corpus)
    totals = {}
    for protocol in ("standard", "legacy"):
        seen = []
        result = runner_module.evaluate(
            load_model(model_dir), records, mean, std, load_evaluator(ev.path, cache_dir=embedding_cache),
            runner_module.EvalOptions(replications=1, steps=2, protocol=protocol), encoders=encoders,
            on_progress=lambda done, total, seen=seen: seen.append(total),
        )  # fmt: skip
        totals[protocol] = (result.clips, seen[-1])
    clips = totals["standard"][0]
    assert clips > 32 and totals == {"standard": (clips, clips), "legacy": (clips, 32)}  # real: all; generated: 32


def test_t2m_evaluator_errors(ev_cli, t2m_dir, corpus, tmp_path, trained):
    no_tokens = tmp_path / "old.jsonl"
    lines = [json.loads(line) for line in corpus.read_text().splitlines()]
    for rec in lines:
        rec.pop("tokens")
        rec["motion"] = str((corpus.parent / rec["motion"]).resolve())
    no_tokens.write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    cases = [
        (["--data", str(no_tokens), "--evaluator", str(t2m_dir)], "word/POS tokens"),
        (["--evaluator", str(t2m_dir), "--glove", str(tmp_path)], "missing the GloVe file"),
        (["--evaluator", str(trained[0].path), "--glove", str(t2m_dir / "glove")], "--glove is for the T2M"),
        (["--evaluator", str(tmp_path)], "neither an evaluator"),
        (["--protocol", "mdm"], "standard or legacy"),
    ]
    for extra, message in cases:
        r = runner.invoke(app, [*ev_cli, "--replications", "1", *extra])
        assert r.exit_code in (1, 2) and message in r.output and "Traceback" not in r.output, (extra, r.output)
    (t2m_dir / "glove").rename(tmp_path / "moved")
    try:
        r = runner.invoke(app, [*ev_cli, "--evaluator", str(t2m_dir)])
        assert r.exit_code == 1 and "no GloVe vocabulary" in r.output
    finally:
        (tmp_path / "moved").rename(t2m_dir / "glove")


class _Proposals:
    """A prompter double: one distinct low-level text per requested proposal, and a record of the calls."""

    backend = "fake"

    def __init__(self):
        self.calls = []

    def run(self, queries, n=3, seed=None):
        from types import SimpleNamespace

        self.calls.append((list(queries), n))
        return [SimpleNamespace(lows=[f"proposal {j} for {q}" for j in range(n)],
                                backend="retrieval (fallback)" if i == 0 else "fake") for i, q in enumerate(queries)]


def test_multimodality_with_prompted_texts_draws_one_proposal_per_repeat(trained, corpus, embedding_cache):
    from motiongpt_cli.checkpoint import load_model
    from motiongpt_cli.evaluation.runner import EvalOptions, evaluate
    from motiongpt_cli.text.encoders import load_encoder

    ev, model_dir = trained
    loaded = load_model(model_dir)
    encoders = {side: load_encoder("minilm", cache_dir=embedding_cache) for side in ("high", "low")}
    records, mean, std = load_dataset(corpus)
    prompter = _Proposals()
    options = EvalOptions(replications=1, low_source="prompt", steps=2, limit=32, mm_texts=2, mm_repeats=10)
    result = evaluate(loaded, records, mean, std, load_evaluator(ev.path, cache_dir=embedding_cache), options,
                      prompter=prompter, encoders=encoders)  # fmt: skip
    assert [n for _, n in prompter.calls] == [1, 10]  # one text per clip, then ten per MultiModality caption
    assert len(prompter.calls[0][0]) == 32 and len(prompter.calls[1][0]) == 2
    assert result.rows["generated"]["multimodality"][0] > 0
    # 32 single proposals + 2 x 10; the first query of each call fell back: 1 + 10
    assert result.to_json()["prompting"] == {"backend": "fake", "proposals": 52, "fallbacks": 11}


def test_prompted_low_texts_from_an_openai_compatible_server(ev_cli, corpus, tmp_path, monkeypatch):
    from test_prompting import FakeLLM

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    index = tmp_path / "index.npz"
    assert runner.invoke(app, ["--no-config", "index", "build", str(corpus), "-o", str(index)]).exit_code == 0
    fake = FakeLLM()
    fake.script = [(200, "walk forward, wave", 0.0)] * 5 + [(200, "!!!", 0.0)]  # then garbage: retrieval instead
    try:
        r = runner.invoke(app, [*ev_cli, "--replications", "1", "--low-source", "prompt", "--index", str(index),
                                "--backend", "openai", "--base-url", fake.url, "--llm-model", "tiny-llm",
                                "--json", str(tmp_path / "p.json")])  # fmt: skip
    finally:
        fake.close()
    assert r.exit_code == 0, r.output
    prompting = json.loads((tmp_path / "p.json").read_text())["prompting"]
    assert prompting["backend"] == "openai" and prompting["proposals"] == 32
    # one request per clip (each with its own seed, even for a repeated caption); the garbage ones fell back
    assert len(fake.requests) == 32 and prompting["fallbacks"] == 27
    assert len({q["body"]["seed"] for q in fake.requests}) == 32
    assert {q["body"]["model"] for q in fake.requests} == {"tiny-llm"}
    assert "using the retrieval backend" in r.stderr
