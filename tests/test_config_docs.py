"""docs/config.md's settings table matches the settings schema (scripts/gen_config_docs.py writes it)."""

from __future__ import annotations

import dataclasses
import importlib.util

from conftest import PROJECT_ROOT
from motiongpt_cli.settings import SCHEMA, Option

PAGE = PROJECT_ROOT / "docs" / "config.md"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", PROJECT_ROOT / "scripts" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_table_is_up_to_date():
    gen = _load_generator()
    page = PAGE.read_text(encoding="utf-8")
    assert page == gen.render(page), "docs/config.md is stale: run python scripts/gen_config_docs.py"
    for opt in SCHEMA:  # every setting is documented, with its environment variable
        assert f"| `{opt.key}` |" in page and f"`{opt.env_name}`" in page


def test_generator_keeps_the_prose_and_replaces_only_the_table():
    gen = _load_generator()
    page = f"# Title\n\nbefore\n\n{gen.BEGIN}\n| stale | table |\n{gen.END}\n\nafter\n"
    out = gen.render(page, SCHEMA[:2])
    assert out.startswith(f"# Title\n\nbefore\n\n{gen.BEGIN}\n| key |") and out.endswith(f"{gen.END}\n\nafter\n")
    assert "stale" not in out and "`device`" in out and "`export.fps`" not in out
    assert gen.render(out, SCHEMA[:2]) == out


def test_generator_shows_choices_secrets_and_escapes_pipes():
    table = _load_generator().render_table(
        [
            Option("a.mode", "str", "x", "pick x | y", ("x", "y")),
            Option("a.key", "str", "", "a key", secret=True),
            Option("a.flags", "list", ["p", "q"], "flags"),
        ]
    )
    assert '| `a.mode` | `x` / `y` | `"x"` | `MOTIONGPT_A_MODE` | pick x \\| y |' in table
    assert "secret" in table.splitlines()[3] and '`["p", "q"]`' in table
    assert "range" not in table


@dataclasses.dataclass(frozen=True)
class _FutureOption(Option):
    """The schema may grow fields; the generator must ignore unknown ones and show ``bounds`` as a range."""

    bounds: object = None
    unit: str = "s"


def test_generator_tolerates_extra_fields_and_shows_bounds():
    table = _load_generator().render_table(
        [
            _FutureOption("a.timeout", "float", 30.0, "seconds", bounds="(0, inf)"),
            _FutureOption("a.b", "bool", True, "b"),
        ]
    )
    lines = table.splitlines()
    assert lines[0] == "| key | type | default | range | environment | meaning |"
    assert lines[2] == "| `a.timeout` | number | `30.0` | `(0, inf)` | `MOTIONGPT_A_TIMEOUT` | seconds |"
    assert lines[3] == "| `a.b` | bool | `true` |  | `MOTIONGPT_A_B` | b |"
    # bounds of None everywhere: no range column
    assert "range" not in _load_generator().render_table([_FutureOption("a.b", "bool", True, "b")])
