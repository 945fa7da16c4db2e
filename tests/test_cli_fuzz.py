"""Every numeric option of generate, prompt, index query, evaluate and train, fuzzed (hypothesis) with NaN, ±inf,
0, negatives, huge and valid values on a tiny model in a fresh folder: a valid set of values exits 0; an invalid
one exits 2 (or 1) with exactly one ``Error:`` line, no traceback, no "unexpected" error, and nothing written.

Expected validity comes from the bounds table (:mod:`motiongpt_cli.validation`), the one source the options use,
plus the few rules that depend on the model or backend (steps at most the tiny model's 100 timesteps, a positive
temperature for the retrieval backend). Derandomised in CI (conftest's ``ci`` profile).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from motiongpt_cli import validation as v
from motiongpt_cli.cli import app

runner = CliRunner()
NASTY = ["nan", "inf", "-inf", "0", "-1", "-5", "1e12", str(2**70), "0.5", "abc", ""]
FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _parsed(text: str, bounds: v.Bounds):
    try:
        return int(text) if bounds.integer else float(text)
    except ValueError:
        return None


def _valid(text: str, bounds: v.Bounds) -> bool:
    value = _parsed(text, bounds)
    return value is not None and bounds.problem(value) is None


def options(table: dict[str, tuple[v.Bounds, list[str]]]):
    """A strategy for a few of ``table``'s options, each with a nasty or a valid value."""
    def one(name):
        bounds, good = table[name]
        return st.tuples(st.just(name), st.sampled_from(NASTY + good))

    return st.lists(st.sampled_from(sorted(table)), min_size=1, max_size=3, unique=True).flatmap(
        lambda names: st.tuples(*[one(n) for n in names])
    )


def check(result, valid: bool, out: Path) -> None:
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    if valid:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code in (1, 2), result.output
    assert sum(line.startswith("Error:") for line in lines) == 1, result.stderr
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


@pytest.fixture(scope="module")
def tiny(tiny_corpus, embedding_cache, tmp_path_factory):
    """(model dir with its own index, the dataset) of a 4-step tiny model (100 training timesteps)."""
    import copy

    from conftest import TINY_RUN
    from motiongpt_cli.data.prepare import load_dataset
    from motiongpt_cli.training import run_config_from_dict, train

    records, mean, std = load_dataset(tiny_corpus)
    result = train(run_config_from_dict(copy.deepcopy(TINY_RUN)), records, mean, std,
                   tmp_path_factory.mktemp("fuzz") / "run", cache_dir=embedding_cache)  # fmt: skip
    return result.model_dir, tiny_corpus


@pytest.fixture
def home(monkeypatch, embedding_cache):
    monkeypatch.setenv("MOTIONGPT_HOME", str(embedding_cache.parent))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


GENERATE = {
    "-n": (v.SAMPLES, ["1", "2"]),
    "--seconds": (v.SECONDS, ["2", "2.5", "3600"]),  # 3600 s is clamped to the model's length (a warning)
    "--frames": (v.FRAMES, ["40", "48", "70000"]),
    "--steps": (v.STEPS, ["1", "2"]),
    "--guidance": (v.GUIDANCE, ["0", "1", "2.5", "100"]),
    "--eta": (v.ETA, ["0", "0.5", "1"]),
    "--seed": (v.SEED, ["0", "7", str(v.SEED_MAX)]),
    "--batch-size": (v.BATCH_SIZE, ["1", "3"]),
}


@FUZZ
@given(drawn=options(GENERATE))
def test_generate_numbers(tiny, home, drawn):
    model, _ = tiny
    drawn = dict(drawn)
    if "--seconds" in drawn and "--frames" in drawn:
        drawn.pop("--frames")  # exclusive, tested elsewhere
    drawn.setdefault("--steps", "1")
    valid = all(_valid(text, GENERATE[name][0]) for name, text in drawn.items())
    valid = valid and int(drawn["--steps"]) <= 100  # the tiny model's training timesteps
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        args = ["--no-config", "generate", "a person walks", "--low", "walk", "--model", str(model), "-o", str(out)]
        result = runner.invoke(app, args + [x for pair in drawn.items() for x in pair])
        check(result, valid, out)
        if valid:
            assert len(list(out.glob("*.npz"))) == int(drawn.get("-n", "1"))


PROMPT = {
    "-k": (v.NEIGHBOURS, ["1", "5"]),
    "-n": (v.SAMPLES, ["1", "3"]),
    "--temperature": (v.LLM_TEMPERATURE, ["0.05", "1", "2"]),
    "--seed": (v.SEED, ["0", "3"]),
}


@FUZZ
@given(drawn=options(PROMPT))
def test_prompt_numbers(tiny, home, drawn):
    model, _ = tiny
    drawn = dict(drawn)
    valid = all(_valid(text, PROMPT[name][0]) for name, text in drawn.items())
    if valid and "--temperature" in drawn:
        valid = float(drawn["--temperature"]) > 0  # the retrieval backend's softmax needs T > 0
    args = ["--no-config", "prompt", "a person waves", "--backend", "retrieval", "--index", str(model / "index.npz")]
    result = runner.invoke(app, args + [x for pair in drawn.items() for x in pair])
    check(result, valid, Path("/nonexistent-output"))
    if valid:
        assert len(result.stdout.splitlines()) == int(drawn.get("-n", "3"))


@FUZZ
@given(k=st.sampled_from(NASTY + ["1", "3", "10000"]))
def test_index_query_numbers(tiny, home, k):
    model, _ = tiny
    result = runner.invoke(app, ["--no-config", "index", "query", "a person waves", "--index",
                                 str(model / "index.npz"), "-k", k, "--json"])  # fmt: skip
    check(result, _valid(k, v.NEIGHBOURS), Path("/nonexistent-output"))
    if _valid(k, v.NEIGHBOURS):
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert 1 <= len(rows) <= int(k)


EVALUATE = {
    "--replications": (v.REPLICATIONS, ["1"]),
    "--steps": (v.STEPS, ["1", "2"]),
    "--guidance": (v.GUIDANCE, ["0", "2.5"]),
    "--limit": (v.EVAL_LIMIT, ["32", "1000000"]),  # more than the split: the whole split
    "--mm-texts": (v.MM_TEXTS, ["0"]),
    "--mm-repeats": (v.MM_REPEATS, ["10"]),
    "--seed": (v.SEED, ["0", "1"]),
}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=options(EVALUATE))
def test_evaluate_numbers(eval_models, eval_corpus, home, drawn):
    ev, model = eval_models
    drawn = dict(drawn)
    drawn.setdefault("--steps", "1")
    drawn.setdefault("--replications", "1")
    drawn.setdefault("--limit", "32")
    valid = all(_valid(text, EVALUATE[name][0]) for name, text in drawn.items())
    valid = valid and int(drawn["--steps"]) <= 100
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        args = ["--no-config", "evaluate", "--model", str(model), "--data", str(eval_corpus), "--evaluator",
                str(ev.path), "--json", str(out / "eval.json")]  # fmt: skip
        result = runner.invoke(app, args + [x for pair in drawn.items() for x in pair])
        check(result, valid, out)
        if valid:
            fid = json.loads((out / "eval.json").read_text())["rows"]["generated"]["fid"]["mean"]
            assert math.isfinite(fid)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.sampled_from(NASTY + ["1", "2"]), decay=st.sampled_from([None, *NASTY, "1", "2", "3"]))
@example(steps="1", decay=None)  # shorter than the warm-up: always tried
@example(steps="3", decay="1")  # the decay fits after the 2 warm-up steps
@example(steps="3", decay="2")  # it does not
def test_train_numbers(tiny, home, steps, decay, tiny_run):
    _, data = tiny
    valid = _valid(steps, v.TRAIN_STEPS)
    if decay is not None:  # a decay must fit in the steps after tiny_run's 2 warm-up steps (0: no decay)
        valid = valid and _valid(decay, v.DECAY_STEPS) and int(decay) in (0, *range(1, int(steps) - 1))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "tiny.toml"
        cfg.write_text(_toml(tiny_run))
        out = Path(tmp) / "run"
        flags = ["--steps", steps, *(["--decay-steps", decay] if decay is not None else [])]
        result = runner.invoke(app, ["--no-config", "train", "--data", str(data), "--config", str(cfg), "-o",
                                     str(out), *flags])  # fmt: skip
        check(result, valid, out)
        if valid:
            assert (out / "model" / "index.npz").is_file()  # the model's own index, at every checkpoint


def _toml(run: dict, raw: dict[str, str] | None = None) -> str:
    """``run`` as TOML; ``raw`` maps dotted keys to literal TOML values (``nan``, ``inf``) that replace them."""
    raw = raw or {}
    lines = []
    for section, values in run.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {raw.get(f'{section}.{k}', json.dumps(val))}" for k, val in values.items()]
        lines += [f"{key.split('.')[1]} = {text}" for key, text in raw.items()
                  if key.split(".")[0] == section and key.split(".")[1] not in values]  # fmt: skip
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("key", "value"),
    [("train.lr", "nan"), ("train.lr", "inf"), ("train.ema_decay", "1.0"), ("train.batch_size", "0"),
     ("model.cond_dropout", "-0.1"), ("loss.pos", "-inf"), ("train.steps", "0")],
)  # fmt: skip
def test_training_toml_numbers_fail_naming_the_key_and_file(tiny, home, tmp_path, tiny_run, key, value):
    _, data = tiny
    run = dict(tiny_run, loss={"pos": 1.0})
    cfg = tmp_path / "bad.toml"
    cfg.write_text(_toml(run, {key: value}))
    result = runner.invoke(app, ["--no-config", "train", "--data", str(data), "--config", str(cfg), "-o",
                                 str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {cfg}: '{key}' must be ") and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
