"""Typed errors raised by the library; the CLI maps them to one ``Error:`` line (plus an optional hint)."""

from __future__ import annotations


class MotionGPTError(Exception):
    """Base class of every error the library raises on purpose.

    ``hint`` tells the user how to fix it; the CLI prints it as ``Hint: ...``.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class SettingsError(MotionGPTError):
    """A settings file, environment variable or flag is invalid (unknown key, wrong type, bad TOML)."""


class MotionFormatError(MotionGPTError):
    """An input motion file has the wrong shape, dtype, values or schema."""


class OutputExistsError(MotionGPTError):
    """An output file exists and overwriting was not asked for."""


class ToolMissingError(MotionGPTError):
    """An external program (ffmpeg, blender) is needed but not installed."""


class InvalidValueError(MotionGPTError):
    """A number or choice given to the library (an option, a settings value, an API argument) is out of range.

    A usage error: the CLI exits 2, as for any other bad option.
    """

    exit_code = 2


class MotionGPTWarning(UserWarning):
    """Something the user should know that does not stop the work (a clamped length, an LLM fallback, a model
    without its own index). The library emits it through :mod:`warnings`; the CLI prints ``Warning: ...`` lines."""


class PromptError(MotionGPTError):
    """The LLM backend failed (after retries) or its answer could not be used."""
