"""Layered TOML settings: built-in defaults < config file < ``MOTIONGPT_*`` environment < command-line flags.

The config file layer is, in this order of preference:

1. the file given with ``--config PATH`` (or ``MOTIONGPT_CONFIG``), alone;
2. otherwise the user config ``<user config dir>/motiongpt/config.toml``, then, on top of it, the project file:
   ``motiongpt.toml`` in the working directory or the nearest parent, or the ``[tool.motiongpt]`` table of the
   nearest ``pyproject.toml``;
3. nothing at all with ``--no-config``.

Keys are dotted (``export.fps``); in TOML they are tables (``[export] fps = 20``), in the environment
``MOTIONGPT_EXPORT_FPS=20``. Unknown keys and wrong types are rejected naming the key and where it came from.
This module never reads ``os.environ`` itself: the caller passes the environment in.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import validation
from .errors import SettingsError
from .motion.outputs import OUTPUT_FORMATS as EXPORT_FORMATS
from .validation import Bounds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ENV_PREFIX = "MOTIONGPT_"
PROJECT_FILE = "motiongpt.toml"
USER_FILE = "config.toml"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One setting: dotted key, kind (``str``, ``int``, ``float``, ``bool``, ``list``), default and help text."""

    key: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    secret: bool = False
    bounds: Bounds | None = None  # numbers: the same bounds as the command-line options (validation.py)

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.key.replace(".", "_").upper()


SCHEMA: tuple[Option, ...] = (
    Option("device", "str", "auto", "compute device: auto picks CUDA when present", ("auto", "cpu", "cuda")),
    Option("export.formats", "list", ["npz", "bvh"], "default output formats of `motiongpt generate` and "
           "`motiongpt export`"),
    Option("export.fps", "int", 20, "frame rate of exported motion (HumanML3D is 20 fps)", bounds=validation.FPS),
    Option("progress", "bool", True, "progress bars on a terminal (never when output is not a TTY)"),
    Option("prompt.backend", "str", "auto", "low-level text source: auto (openai when a base URL or key is set, "
           "else retrieval), openai or retrieval", ("auto", "openai", "retrieval")),
    Option("prompt.model", "str", "gpt-4o-mini", "chat model name for the openai backend"),
    Option("prompt.base_url", "str", "", "OpenAI-compatible endpoint (else OPENAI_BASE_URL, else api.openai.com)"),
    Option("prompt.api_key", "str", "", "API key (prefer the OPENAI_API_KEY environment variable)", secret=True),
    Option("prompt.on_error", "str", "fallback", "when the LLM fails or answers garbage: fallback to retrieval "
           "with a warning, or fail", ("fallback", "fail")),
    Option("prompt.timeout", "float", 30.0, "seconds per LLM request", bounds=validation.TIMEOUT),
    Option("prompt.retries", "int", 3, "retries on 429/5xx/timeouts, with exponential backoff",
           bounds=validation.RETRIES),
    Option("prompt.examples", "int", 10, "k: training pairs retrieved as examples (KATE)",
           bounds=validation.NEIGHBOURS),
    Option("prompt.temperature", "float", 0.7, "LLM sampling temperature", bounds=validation.LLM_TEMPERATURE),
    Option("prompt.retrieval_temperature", "float", 0.05, "retrieval backend: softmax(similarity / T) over the k "
           "neighbours (small T = the nearest, large T = uniform)", bounds=validation.RETRIEVAL_TEMPERATURE),
)



@dataclass
class Settings:
    """Effective settings: ``values[key]`` and ``sources[key]`` (``default``, a file path, ``env NAME``, ``flag``)."""

    values: dict[str, Any]
    sources: dict[str, str]
    schema: tuple[Option, ...] = field(default=SCHEMA, repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def rows(self) -> list[tuple[str, str, str]]:
        """(key, displayed value, source) for every option; secrets are masked."""
        out = []
        for opt in self.schema:
            value = self.values[opt.key]
            shown = _mask(value) if opt.secret else _format(value)
            out.append((opt.key, shown, self.sources[opt.key]))
        return out


def _mask(value: Any) -> str:
    if not value:
        return "(not set)"
    text = str(value)
    return "****" + text[-4:] if len(text) > 8 else "****"


def _format(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _coerce(opt: Option, value: Any, where: str) -> Any:
    """Check a TOML value's type (TOML already typed it)."""
    kind = opt.kind
    ok = (
        (kind == "str" and isinstance(value, str))
        or (kind == "bool" and isinstance(value, bool))
        or (kind == "int" and isinstance(value, int) and not isinstance(value, bool))
        or (kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (kind == "list" and isinstance(value, list) and all(isinstance(v, str) for v in value))
    )
    if not ok:
        want = {"list": "a list of strings", "int": "an integer", "float": "a number", "bool": "true or false"}.get(
            kind, f"a {kind}"
        )
        raise SettingsError(f"{where}: '{opt.key}' must be {want}, got {value!r}")
    if kind == "float":
        value = float(value)
    return _check_choices(opt, value, where)


def _check_choices(opt: Option, value: Any, where: str) -> Any:
    if opt.choices is not None and value not in opt.choices:
        raise SettingsError(f"{where}: '{opt.key}' must be one of {', '.join(opt.choices)}, got {value!r}")
    if opt.key == "export.formats":
        bad = [v for v in value if v not in EXPORT_FORMATS]
        if bad:
            raise SettingsError(f"{where}: unknown export format {bad[0]!r} (choose from {', '.join(EXPORT_FORMATS)})")
    if opt.bounds is not None:
        problem = opt.bounds.problem(value)
        if problem:
            raise SettingsError(f"{where}: '{opt.key}' {problem}")
    return value


def parse_text_value(opt: Option, text: str, where: str) -> Any:
    """Parse an environment-variable or flag string into the option's kind."""
    kind = opt.kind
    try:
        if kind == "str":
            value: Any = text
        elif kind == "int":
            value = int(text)
        elif kind == "float":
            value = float(text)
        elif kind == "bool":
            low = text.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(text)
            value = low in _TRUE
        else:
            value = [v.strip() for v in text.split(",") if v.strip()]
    except ValueError:
        want = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(kind, f"a {kind}")
        raise SettingsError(f"{where}: '{opt.key}' must be {want}, got {text!r}") from None
    return _check_choices(opt, value, where)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def read_toml(path: Path, *, table: str | None = None) -> dict[str, Any]:
    """Read a TOML file (optionally one nested table such as ``tool.motiongpt``) as flat dotted keys."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from None
    if table:
        for part in table.split("."):
            data = data.get(part, {})
            if not isinstance(data, dict):
                raise SettingsError(f"{path}: [{table}] must be a table")
    return _flatten(data)


def find_project_file(cwd: Path) -> tuple[Path, str | None] | None:
    """The nearest ``motiongpt.toml``, or ``pyproject.toml`` with a ``[tool.motiongpt]`` table, from ``cwd`` up."""
    for folder in (cwd, *cwd.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate, None
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                with open(pyproject, "rb") as fh:
                    has_table = "motiongpt" in tomllib.load(fh).get("tool", {})
            except (OSError, tomllib.TOMLDecodeError):
                has_table = False
            if has_table:
                return pyproject, "tool.motiongpt"
    return None


def config_files(
    *, config_path: Path | None, no_config: bool, cwd: Path, user_config_dir: Path | None
) -> list[tuple[Path, str | None]]:
    """The config files that apply, lowest precedence first, each with the TOML table to read."""
    if no_config:
        return []
    if config_path is not None:
        return [(config_path, None)]
    files: list[tuple[Path, str | None]] = []
    if user_config_dir is not None and (user_config_dir / USER_FILE).is_file():
        files.append((user_config_dir / USER_FILE, None))
    project = find_project_file(cwd)
    if project is not None:
        files.append(project)
    return files


def load_settings(
    *,
    env: Mapping[str, str],
    flags: Mapping[str, Any] | None = None,
    config_path: Path | None = None,
    no_config: bool = False,
    cwd: Path | None = None,
    user_config_dir: Path | None = None,
    schema: tuple[Option, ...] = SCHEMA,
) -> Settings:
    """Build the effective settings from every layer; ``flags`` maps dotted keys to already-typed values."""
    by_key = {opt.key: opt for opt in schema}
    values = {opt.key: opt.default for opt in schema}
    sources = dict.fromkeys(values, "default")
    if config_path is None and env.get(ENV_PREFIX + "CONFIG"):
        config_path = Path(env[ENV_PREFIX + "CONFIG"])
    files = config_files(
        config_path=config_path, no_config=no_config, cwd=cwd or Path.cwd(), user_config_dir=user_config_dir
    )
    for path, table in files:
        where = f"{path} [{table}]" if table else str(path)
        for key, value in read_toml(path, table=table).items():
            if key not in by_key:
                raise SettingsError(f"{where}: unknown setting '{key}'", hint=_known_keys_hint(schema))
            values[key] = _coerce(by_key[key], value, where)
            sources[key] = str(path)
    env_names = {opt.env_name: opt for opt in schema}
    reserved = {ENV_PREFIX + name for name in ("CONFIG", "DEBUG", "HOME")}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name in reserved:
            continue
        opt = env_names.get(name)
        if opt is None:
            raise SettingsError(f"environment: unknown setting {name}", hint=_known_keys_hint(schema, env=True))
        values[opt.key] = parse_text_value(opt, text, f"environment {name}")
        sources[opt.key] = f"env {name}"
    for key, value in (flags or {}).items():
        if value is None:
            continue
        if key not in by_key:
            raise SettingsError(f"unknown setting '{key}'")
        values[key] = _check_choices(by_key[key], value, "command line")
        sources[key] = "flag"
    return Settings(values=values, sources=sources, schema=schema)


def _known_keys_hint(schema: tuple[Option, ...], *, env: bool = False) -> str:
    names = [opt.env_name if env else opt.key for opt in schema]
    return "known settings: " + ", ".join(names)
