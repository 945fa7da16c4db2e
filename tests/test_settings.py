"""Settings layering: defaults < user file < project file < environment < flags; strict keys and types."""

from __future__ import annotations

from pathlib import Path

import pytest

from motiongpt_cli.errors import SettingsError
from motiongpt_cli.settings import Option, load_settings


def _load(tmp_path: Path, **kw):
    kw.setdefault("env", {})
    kw.setdefault("cwd", tmp_path)
    kw.setdefault("user_config_dir", tmp_path / "user")
    return load_settings(**kw)


def test_defaults_when_nothing_is_configured(tmp_path):
    s = _load(tmp_path)
    assert s["device"] == "auto" and s["export.fps"] == 20 and s["export.formats"] == ["npz", "bvh"]
    assert set(s.sources.values()) == {"default"}


def test_layers_in_order(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "config.toml").write_text('device = "cpu"\n[export]\nfps = 30\nformats = ["gif"]\n')
    project = tmp_path / "proj" / "sub"
    project.mkdir(parents=True)
    (tmp_path / "proj" / "motiongpt.toml").write_text("[export]\nfps = 25\n")
    s = _load(tmp_path, cwd=project, env={"MOTIONGPT_EXPORT_FORMATS": "bvh,mp4"}, flags={"device": "cuda"})
    assert s["export.fps"] == 25 and s.sources["export.fps"] == str(tmp_path / "proj" / "motiongpt.toml")
    assert s["export.formats"] == ["bvh", "mp4"] and s.sources["export.formats"] == "env MOTIONGPT_EXPORT_FORMATS"
    assert s["device"] == "cuda" and s.sources["device"] == "flag"


def test_pyproject_tool_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\n[tool.motiongpt.export]\nfps = 12\n')
    s = _load(tmp_path)
    assert s["export.fps"] == 12 and s.sources["export.fps"].endswith("pyproject.toml")


def test_pyproject_without_table_is_ignored(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\n')
    assert _load(tmp_path)["export.fps"] == 20


def test_explicit_config_replaces_discovery_and_no_config_ignores_files(tmp_path):
    (tmp_path / "motiongpt.toml").write_text("[export]\nfps = 25\n")
    other = tmp_path / "other.toml"
    other.write_text('device = "cpu"\n')
    s = _load(tmp_path, config_path=other)
    assert s["device"] == "cpu" and s["export.fps"] == 20
    s = _load(tmp_path, env={"MOTIONGPT_CONFIG": str(other)})
    assert s["device"] == "cpu"
    assert _load(tmp_path, no_config=True)["export.fps"] == 20


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[export]\nfpz = 3\n", "unknown setting 'export.fpz'"),
        ('[export]\nfps = "fast"\n', "'export.fps' must be an integer"),
        ("[export]\nfps = true\n", "'export.fps' must be an integer"),
        ("[export]\nfps = -5\n", "'export.fps' must be an integer >= 1 and <= 1000, got -5"),
        ("[prompt]\ntemperature = nan\n", "'prompt.temperature' must be a finite number >= 0 and <= 2, got nan"),
        ("[prompt]\ntemperature = inf\n", "'prompt.temperature' must be a finite number >= 0 and <= 2, got inf"),
        ("[prompt]\ntimeout = 0\n", "'prompt.timeout' must be a finite number > 0"),
        ("[prompt]\nretrieval_temperature = -inf\n", "'prompt.retrieval_temperature' must be a finite number > 0"),
        ('device = "gpu"\n', "must be one of auto, cpu, cuda"),
        ('[export]\nformats = ["npz", "usdz"]\n', "unknown export format 'usdz'"),
        ("[export\n", "invalid TOML"),
    ],
)
def test_bad_files_name_the_key_and_file(tmp_path, toml, message):
    path = tmp_path / "motiongpt.toml"
    path.write_text(toml)
    with pytest.raises(SettingsError) as err:
        _load(tmp_path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_missing_explicit_config(tmp_path):
    with pytest.raises(SettingsError, match="config file not found"):
        _load(tmp_path, config_path=tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MOTIONGPT_EXPORT_FPS": "abc"}, "environment MOTIONGPT_EXPORT_FPS: 'export.fps' must be an integer"),
        ({"MOTIONGPT_NOPE": "1"}, "unknown setting MOTIONGPT_NOPE"),
        ({"MOTIONGPT_PROMPT_TEMPERATURE": "nan"}, "environment MOTIONGPT_PROMPT_TEMPERATURE: 'prompt.temperature' "
                                                  "must be a finite number >= 0 and <= 2, got nan"),
    ],
)
def test_bad_environment(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message):
        _load(tmp_path, env=env)


def test_booleans_and_reserved_names(tmp_path):
    schema = (Option("fast", "bool", True, "a flag"),)
    s = _load(tmp_path, env={"MOTIONGPT_FAST": "off", "MOTIONGPT_DEBUG": "1", "MOTIONGPT_HOME": "/x"}, schema=schema)
    assert s["fast"] is False
    with pytest.raises(SettingsError, match="must be true or false"):
        _load(tmp_path, env={"MOTIONGPT_FAST": "maybe"}, schema=schema)
    (tmp_path / "motiongpt.toml").write_text("fast = 1\n")
    with pytest.raises(SettingsError, match="'fast' must be true or false"):
        _load(tmp_path, schema=schema)


def test_secrets_are_masked_in_rows(tmp_path):
    schema = (Option("llm.api_key", "str", "", "key", secret=True),)
    s = _load(tmp_path, env={"MOTIONGPT_LLM_API_KEY": "sk-very-secret-1234"}, schema=schema)
    assert s["llm.api_key"] == "sk-very-secret-1234"
    ((key, shown, source),) = s.rows()
    assert key == "llm.api_key" and "very-secret" not in shown and shown.endswith("1234")
    assert source == "env MOTIONGPT_LLM_API_KEY"
