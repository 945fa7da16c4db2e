"""KATE prompting: the prompt, answer sanitising, retrieval sampling, and the openai backend against a fake
OpenAI-compatible server on 127.0.0.1 (down, HTTP 500, 429, slow, garbage, cache, the API key never printed)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.data.prepare import read_records
from motiongpt_cli.errors import MotionGPTWarning
from motiongpt_cli.text.encoders import load_encoder
from motiongpt_cli.text.index import Neighbour, build_index
from motiongpt_cli.text.prompting import (
    INSTRUCTION,
    GarbageAnswerError,
    LLMSettings,
    OpenAIChat,
    Prompter,
    PromptError,
    ResponseCache,
    build_prompt,
    parse_answer,
    render_template,
    retrieval_sample,
    sanitize_answer,
)

runner = CliRunner()
SECRET = "sk-test-0123456789abcdef-secret"

# ---------------------------------------------------------------------------------------------------- fake server


class FakeLLM:
    """An OpenAI-compatible chat endpoint; ``script`` is a list of (status, answer, delay) served in order (the
    last one repeats). Records each request's JSON body and Authorization header."""

    def __init__(self) -> None:
        self.script: list[tuple[int, str, float]] = [(200, "walk forward, wave", 0.0)]
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                i = min(len(fake.requests) - 1, len(fake.script) - 1)
                status, answer, delay = fake.script[i]
                time.sleep(delay)
                if status == 200:
                    payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": answer}}]}  # fmt: skip
                else:
                    payload = {"error": {"message": answer, "type": "server_error"}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm():
    fake = FakeLLM()
    yield fake
    fake.close()


def _free_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def _chat(url, tmp_path=None, **kw) -> OpenAIChat:
    settings = LLMSettings(model="smollm", base_url=url, api_key=SECRET, timeout=kw.pop("timeout", 5.0),
                           retries=kw.pop("retries", 0), **kw)  # fmt: skip
    return OpenAIChat(settings, ResponseCache(tmp_path))


# ---------------------------------------------------------------------------------------------------- the prompt

EXAMPLES = [Neighbour("greet a friend", "wave", 0.9, 0), Neighbour("say hello", "nod, wave", 0.8, 1)]


def test_prompt_follows_the_paper_layout():
    prompt = build_prompt("  meet someone ", EXAMPLES)
    assert prompt.startswith(INSTRUCTION + "\n\n")
    assert prompt.endswith("scene: meet someone\nmotion:")
    # examples as scene/motion pairs, the most similar one last, just before the query
    assert prompt.index("scene: say hello\nmotion: nod, wave") < prompt.index("scene: greet a friend\nmotion: wave")
    with pytest.raises(PromptError, match="unknown placeholders"):
        render_template("$text $nope", {"text": "x"})
    with pytest.raises(PromptError, match=r"\$text"):
        render_template("$instruction", {"instruction": "x"})


def test_default_prompt_is_the_papers_byte_for_byte():
    timed = [Neighbour("greet a friend", "wave", 0.9, 0, 2.5), Neighbour("say hello", "nod, wave", 0.8, 1, 4.0)]
    expected = ("Convert scene to motion sequences according to the examples.\n\n"
                "scene: say hello\nmotion: nod, wave\n"
                "scene: greet a friend\nmotion: wave\n"
                "\nscene: meet someone\nmotion:")  # fmt: skip
    assert build_prompt("meet someone", EXAMPLES) == expected
    assert build_prompt("meet someone", timed) == expected  # examples' durations are not shown unless asked


def test_duration_prompt_shows_each_examples_seconds():
    timed = [Neighbour("greet a friend", "wave", 0.9, 0, 2.5), Neighbour("say hello", "nod, wave", 0.8, 1, 4.45)]
    assert build_prompt(" meet someone ", timed, durations=True) == (
        "Convert scene to motion sequences and their duration in seconds according to the examples.\n\n"
        "scene: say hello\nmotion: nod, wave\nseconds: 4.5\n"
        "scene: greet a friend\nmotion: wave\nseconds: 2.5\n"
        "\nscene: meet someone\nmotion:"
    )
    with pytest.raises(PromptError, match="durations"):
        build_prompt("meet someone", EXAMPLES, durations=True)  # examples without durations


@pytest.mark.parametrize(
    ("answer", "actions", "seconds"),
    [
        ("wave, bow\nseconds: 3.5", "wave, bow", 3.5),
        ("wave, bow (4 s)", "wave, bow", 4.0),
        ("motion: jump, clap, 2 seconds.", "jump, clap", 2.0),
        ("walk forward 5.5sec", "walk forward", 5.5),
        ("1. wave\n2. bow\nSeconds: 3", "wave, bow", 3.0),
        ("seconds: 3\nwave, bow", "wave, bow", 3.0),
        ("wave, bow\nseconds: a few", "wave, bow", None),  # garbage duration: None, the actions still count
        ("wave, bow\nseconds: 3 or 4", "wave, bow", None),
        ("wave, bow\nseconds: 0.2", "wave, bow", None),  # outside [0.5, 30] s: rejected, not clamped
        ("wave, bow\nseconds: 45", "wave, bow", None),
        ("wave, bow (300 s)", "wave, bow", None),
        ("wave, bow", "wave, bow", None),  # no duration
        ("take 2 steps, turn 90 degrees", "take 2 steps, turn 90 degrees", None),  # numbers that are no duration
        ("wave\nscene: say hi\nmotion: nod\nseconds: 2", "wave", None),  # another example's duration
    ],
)
def test_parse_answer_reads_actions_and_a_duration(answer, actions, seconds):
    assert parse_answer(answer) == (actions, seconds)


def test_parse_answer_without_actions_is_garbage():
    with pytest.raises(GarbageAnswerError):
        parse_answer("seconds: 3.5")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("walk forward, wave", "walk forward, wave"),
        ('"Walk forward, wave."', "walk forward, wave"),
        ("motion: squat down; stand up", "squat down, stand up"),
        ("1. walk forward\n2. turn left\n3. sit down", "walk forward, turn left, sit down"),
        ("- jump\n- clap", "jump, clap"),
        ("wave then bow\nscene: something else\nmotion: run", "wave, bow"),
        ("```\nkick, punch\n```", "kick, punch"),
        ("1. wave\n2. bow\nseconds: 3.5", "wave, bow"),  # a duration line is not an action
        ("sequence:\njog, kick with right leg\nright punch kicks the left foot", "jog, kick with right leg"),  # SmolLM2
        ("raise both arms and then lower them slowly over a long long period of time, nod", "raise both arms, nod"),
        (", ".join(f"step {i}" for i in range(30)), None),  # numbering-only actions are stripped away
        (", ".join(["jump"] * 20), ", ".join(["jump"] * 12)),  # at most 12 actions
    ],
)
def test_sanitize_answer(answer, expected):
    if expected is None:
        with pytest.raises(GarbageAnswerError):
            sanitize_answer(answer)
    else:
        assert sanitize_answer(answer) == expected


@pytest.mark.parametrize("answer", ["", "   \n ", "!!! ??? ###", "scene: a man walks", "\u4f60\u597d"])
def test_garbage_answers_raise(answer):
    with pytest.raises(GarbageAnswerError):
        sanitize_answer(answer)


# ---------------------------------------------------------------------------------------------------- retrieval


def test_retrieval_sampling_draws_distinct_texts_first_and_reproduces():
    nbs = [Neighbour("h", low, sim, i) for i, (low, sim) in enumerate([("a", 0.9), ("b", 0.85), ("a", 0.8),
                                                                        ("c", 0.5)])]  # fmt: skip
    picks = retrieval_sample(nbs, 3, 0.05, np.random.default_rng(0))
    assert sorted(picks) == ["a", "b", "c"]
    assert retrieval_sample(nbs, 5, 0.05, np.random.default_rng(4)) == retrieval_sample(
        nbs, 5, 0.05, np.random.default_rng(4)
    )
    with pytest.raises(PromptError, match="temperature"):
        retrieval_sample(nbs, 1, 0.0, np.random.default_rng(0))
    with pytest.raises(PromptError, match="no neighbours"):
        retrieval_sample([], 1, 0.1, np.random.default_rng(0))


def test_retrieval_sampling_follows_the_softmax():
    nbs = [Neighbour("h", "a", 0.9, 0), Neighbour("h", "b", 0.8, 1), Neighbour("h", "a", 0.7, 2)]
    T = 0.1
    w = np.exp(np.array([0.9, 0.8, 0.7]) / T)
    p_a = (w[0] + w[2]) / w.sum()
    rng = np.random.default_rng(1)
    counts = Counter(retrieval_sample(nbs, 1, T, rng)[0] for _ in range(4000))
    assert counts["a"] / 4000 == pytest.approx(p_a, abs=0.025)


# ---------------------------------------------------------------------------------------------------- openai backend


def test_openai_chat_sends_the_request_and_caches_by_seed(llm, tmp_path):
    chat = _chat(llm.url, tmp_path / "cache")
    assert chat.complete("the prompt", seed=3) == "walk forward, wave"
    body = llm.requests[0]["body"]
    assert body["messages"] == [{"role": "user", "content": "the prompt"}]
    assert (body["model"], body["seed"], body["max_tokens"]) == ("smollm", 3, 64)
    assert llm.requests[0]["auth"] == f"Bearer {SECRET}"
    again = _chat(llm.url, tmp_path / "cache")  # a new process, same cache folder
    assert again.complete("the prompt", seed=3) == "walk forward, wave"
    assert len(llm.requests) == 1 and again.calls == 0
    assert not any(SECRET in p.read_text() for p in (tmp_path / "cache").iterdir())  # the key is not cached
    again.complete("the prompt", seed=4)  # another seed is another request
    assert len(llm.requests) == 2
    _chat(llm.url, None).complete("the prompt", seed=3)  # no cache: always asks
    assert len(llm.requests) == 3


def test_http_500_is_retried_then_succeeds(llm):
    llm.script = [(500, "boom", 0.0), (200, "kick", 0.0)]
    assert _chat(llm.url, retries=2).complete("p", seed=None) == "kick"
    assert len(llm.requests) == 2


def test_http_500_after_retries_is_a_clear_error(llm):
    llm.script = [(500, "boom", 0.0)]
    with pytest.raises(PromptError, match="HTTP 500 after 1 retries"):
        _chat(llm.url, retries=1).complete("p", seed=None)
    assert len(llm.requests) == 2


def test_rate_limit_429_is_retried(llm):
    llm.script = [(429, "slow down", 0.0), (200, "bow", 0.0)]
    assert _chat(llm.url, retries=2).complete("p", seed=None) == "bow"
    assert len(llm.requests) == 2


def test_slow_server_times_out(llm):
    llm.script = [(200, "late", 3.0)]
    start = time.perf_counter()
    with pytest.raises(PromptError, match="timed out after 0.5 s"):
        _chat(llm.url, timeout=0.5, retries=0).complete("p", seed=None)
    assert time.perf_counter() - start < 2.5


def test_server_down_is_a_clear_error():
    with pytest.raises(PromptError, match="cannot reach the LLM"):
        _chat(_free_port_url(), retries=0).complete("p", seed=None)


def test_bad_key_401(llm):
    llm.script = [(401, "bad key", 0.0)]
    with pytest.raises(PromptError, match="refused the API key") as info:
        _chat(llm.url).complete("p", seed=None)
    assert SECRET not in str(info.value)


# ---------------------------------------------------------------------------------------------------- Prompter


@pytest.fixture(scope="module")
def small_index(tiny_corpus, embedding_cache, tmp_path_factory):
    encoder = load_encoder("minilm", cache_dir=embedding_cache)
    index = build_index(read_records(tiny_corpus), encoder)
    path = index.save(tmp_path_factory.mktemp("index") / "index.npz")
    return index, encoder, path


def test_prompter_falls_back_on_garbage_with_a_warning(llm, small_index):
    index, encoder, _ = small_index
    llm.script = [(200, "!!!", 0.0)]
    p = Prompter(index, encoder, backend="openai", chat=_chat(llm.url), k=5)
    with pytest.warns(MotionGPTWarning) as caught:
        (result,) = p.run(["a person waves"], n=2, seed=0)
    assert result.backend == "retrieval (fallback)" and len(result.lows) == 2
    assert set(result.lows) <= {ex.low for ex in result.examples}
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and ("not an action list" in messages[0] or "nothing usable" in messages[0])
    strict = Prompter(index, encoder, backend="openai", chat=_chat(llm.url), k=5, on_error="fail")
    with pytest.raises(GarbageAnswerError):
        strict.run(["a person waves"], n=1, seed=0)


def test_prompter_uses_the_llm_answer_per_sample(llm, small_index):
    index, encoder, _ = small_index
    llm.script = [(200, "1. Wave\n2. Bow", 0.0)]
    (result,) = Prompter(index, encoder, backend="openai", chat=_chat(llm.url), k=4).run(["greet"], n=3, seed=5)
    assert result.backend == "openai" and result.lows == ["wave, bow"] * 3
    assert [r["body"]["seed"] for r in llm.requests] == [5, 6, 7]  # one seed per sample
    prompt = llm.requests[0]["body"]["messages"][0]["content"]
    assert prompt.count("scene: ") == 5 and prompt.endswith("scene: greet\nmotion:")
    with pytest.raises(PromptError, match="empty text"):
        Prompter(index, encoder).run(["  "])
    with pytest.raises(PromptError, match="n must be"):
        Prompter(index, encoder).run(["x"], n=0)
    with pytest.raises(PromptError, match="k must be"):
        Prompter(index, encoder, k=0)


def test_prompter_asks_the_llm_for_durations_only_when_asked(llm, small_index):
    index, encoder, _ = small_index
    assert index.seconds is not None  # built from a dataset: the pairs' clip durations
    llm.script = [(200, "wave, bow\nseconds: 3.5", 0.0), (200, "kick", 0.0), (200, "wave\nseconds: 99", 0.0)]
    p = Prompter(index, encoder, backend="openai", chat=_chat(llm.url), k=3)
    (result,) = p.run(["greet"], n=3, seed=0, durations=True)
    assert result.lows == ["wave, bow", "kick", "wave"] and result.seconds == [3.5, None, None]
    prompt = llm.requests[0]["body"]["messages"][0]["content"]
    shown = [f"seconds: {s:.1f}\n" for s in index.seconds[[ex.row for ex in result.examples]]]
    assert prompt.count("seconds: ") == 3 and all(line in prompt for line in shown)
    assert prompt.endswith("scene: greet\nmotion:") and prompt == result.prompt
    assert result.to_json(seconds=True)["seconds"] == [3.5, None, None] and "seconds" not in result.to_json()
    llm.script = [(200, "wave, bow\nseconds: 3.5", 0.0)]
    (plain,) = p.run(["greet"], n=1, seed=10)  # not asked: the paper's prompt, no durations read
    assert plain.seconds == [None] and "seconds:" not in plain.prompt
    assert plain.prompt == build_prompt("greet", plain.examples)
    (offline,) = Prompter(index, encoder, k=3).run(["greet"], n=2, seed=0, durations=True)
    assert offline.backend == "retrieval" and offline.seconds == [None, None]  # retrieval never invents durations


def test_plan_takes_the_llms_duration_then_the_predictor(llm, small_index, embedding_cache):
    from motiongpt_cli.api import load_pipeline
    from motiongpt_cli.text.prompting import PromptConfig

    config = PromptConfig(backend="openai", base_url=llm.url, retries=0, cache=False)
    pipe = load_pipeline(device="cpu", index=small_index[2], prompt=config, env={}, cache_dir=embedding_cache)
    predicted = pipe.predict_frames(["greet a friend"])[0]
    llm.script = [(200, "wave, bow\nseconds: 3.5", 0.0), (200, "bow", 0.0)]
    plan = pipe.plan("greet a friend", n=2, seed=0)
    assert [job.low for job in plan.jobs] == ["wave, bow", "bow"]
    assert [job.frames for job in plan.jobs] == [70, predicted]  # 3.5 s at 20 fps; no duration: the predictor's
    assert predicted != 70 and "seconds: " in llm.requests[0]["body"]["messages"][0]["content"]
    llm.requests.clear()
    llm.script = [(200, "wave, bow\nseconds: 3.5", 0.0)]
    plan = pipe.plan("greet a friend", n=2, seed=0, seconds=4)  # a given length wins, and no duration is asked
    assert [job.frames or plan.frames for job in plan.jobs] == [80, 80]
    assert "seconds:" not in llm.requests[0]["body"]["messages"][0]["content"]
    assert pipe.plan("greet a friend", seed=0, frames=50).frames == 50
    llm.script = [(200, "wave\nseconds: 20", 0.0)]  # a plausible duration beyond the model's range is clamped
    with pytest.warns(MotionGPTWarning, match="outside the model's range"):
        (job,) = pipe.plan("greet a friend", seed=1).jobs
    assert job.frames == pipe.max_frames


def test_plan_without_a_predictor_warns_only_when_a_motion_gets_6_s(llm, small_index, embedding_cache, tmp_path):
    import shutil
    import warnings

    from motiongpt_cli.api import load_pipeline
    from motiongpt_cli.length import LENGTH_FILE
    from motiongpt_cli.paths import EMBEDDED_DIR
    from motiongpt_cli.text.prompting import PromptConfig

    model = tmp_path / "model"  # the embedded model without its length predictor
    shutil.copytree(EMBEDDED_DIR, model, ignore=shutil.ignore_patterns(LENGTH_FILE))
    config = json.loads((model / "config.json").read_text())
    del config["length"]
    (model / "config.json").write_text(json.dumps(config))
    prompt = PromptConfig(backend="openai", base_url=llm.url, retries=0, cache=False)
    pipe = load_pipeline(model, device="cpu", index=small_index[2], prompt=prompt, env={}, cache_dir=embedding_cache)
    assert pipe.length_predictor is None
    llm.script = [(200, "wave, bow\nseconds: 3.5", 0.0), (200, "bow\nseconds: 2.5", 0.0)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = pipe.plan("greet a friend", n=2, seed=0)
    assert [job.frames for job in plan.jobs] == [70, 50]  # every length from the LLM: no 6 s default to warn of
    assert not [w for w in caught if "length predictor" in str(w.message) or "6 s" in str(w.message)]
    llm.requests.clear()
    llm.script = [(200, "wave, bow\nseconds: 3.5", 0.0), (200, "bow", 0.0)]
    with pytest.warns(MotionGPTWarning, match="no length predictor; motions are 6 s long"):
        plan = pipe.plan("greet a friend", n=2, seed=0)
    assert [job.frames for job in plan.jobs] == [70, None] and plan.frames == 120  # the second: 6 s at 20 fps


# ---------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_env(tmp_path, monkeypatch, small_index):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return ["--no-config", "prompt", "--index", str(small_index[2])]


def test_cli_prompt_retrieval_is_reproducible_and_diverse(cli_env):
    r1 = runner.invoke(app, [*cli_env, "a person waves", "walk in a circle", "-n", "3", "--seed", "1", "--json"])
    assert r1.exit_code == 0, r1.output
    rows = [json.loads(line) for line in r1.stdout.splitlines()]
    assert [row["query"] for row in rows] == ["a person waves", "walk in a circle"]
    assert all(row["backend"] == "retrieval" and len(row["low"]) == 3 for row in rows)
    assert all(len(set(row["low"])) > 1 for row in rows)
    assert len(rows[0]["examples"]) == 10 and rows[0]["examples"][0]["similarity"] >= rows[0]["examples"][-1][
        "similarity"
    ]
    r2 = runner.invoke(app, [*cli_env, "a person waves", "walk in a circle", "-n", "3", "--seed", "1", "--json"])
    assert r2.stdout == r1.stdout
    r3 = runner.invoke(app, [*cli_env, "-", "-n", "1"], input="jump up\n\nkick\n")
    assert r3.exit_code == 0 and len(r3.stdout.strip().splitlines()) == 2


def test_cli_prompt_openai_never_prints_the_key(cli_env, llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    r = runner.invoke(app, [*cli_env, "greet a friend", "-n", "2", "--seed", "0", "--json", "--show-prompt"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["backend"] == "openai" and row["low"] == ["walk forward, wave"] * 2
    assert "Convert scene to motion sequences" in r.stderr
    assert llm.requests[0]["auth"] == f"Bearer {SECRET}"
    assert SECRET not in r.output and SECRET not in r.stderr


def test_cli_prompt_seconds(cli_env, llm):
    llm.script = [(200, "walk forward, wave (2.5 s)", 0.0)]
    base = [*cli_env, "greet a friend", "-n", "2", "--seed", "0", "--base-url", llm.url, "--seconds"]
    r = runner.invoke(app, [*base, "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["low"] == ["walk forward, wave"] * 2 and row["seconds"] == [2.5, 2.5]
    assert all(ex["seconds"] > 0 for ex in row["examples"])  # the examples' clip durations that were shown
    r = runner.invoke(app, [*base, "--no-cache"])
    assert r.exit_code == 0 and r.stdout.splitlines() == ["walk forward, wave\t2.5"] * 2


def test_cli_prompt_key_is_not_sent_to_another_endpoint(cli_env, llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    r = runner.invoke(app, [*cli_env, "greet", "-n", "1", "--base-url", llm.url, "--json"])
    assert r.exit_code == 0, r.output
    assert llm.requests[0]["auth"] != f"Bearer {SECRET}"


def test_cli_prompt_server_down_falls_back_or_fails(cli_env):
    url = _free_port_url()
    base = [*cli_env, "greet a friend", "--backend", "openai", "--base-url", url, "-n", "2"]
    r = runner.invoke(app, [*base, "--json"], env={"MOTIONGPT_PROMPT_RETRIES": "0"})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["backend"] == "retrieval (fallback)"
    assert "Warning: cannot reach the LLM" in r.stderr
    r = runner.invoke(app, [*base, "--on-error", "fail"], env={"MOTIONGPT_PROMPT_RETRIES": "0"})
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "cannot reach the LLM" in r.stderr and len(r.stderr.strip().splitlines()) <= 2


def test_cli_prompt_bad_input(cli_env):
    r = runner.invoke(app, [*cli_env, ""])
    assert r.exit_code != 0 and "empty" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, [*cli_env, "x", "--backend", "gpt"])
    assert r.exit_code != 0 and "backend" in r.output
    r = runner.invoke(app, [*cli_env, "x", "--backend", "openai"])
    assert r.exit_code != 0 and "API key" in r.output
