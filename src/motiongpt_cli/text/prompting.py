"""Low-level texts for high-level queries (paper sec. 3.3): KATE example retrieval, the prompt, LLM backends.

KATE (Liu et al. 2022): the ``k`` training pairs whose high-level texts are most similar to the query (cosine of
sentence embeddings) become the examples. The prompt is the paper's instruction, the (high, low) example pairs and
the query, sent as one chat message; the answer is sanitised into one comma-separated action list.

Durations (as HY-Motion asks its LLM for one): ``Prompter.run(..., durations=True)`` with the ``openai`` backend and
an index that records its pairs' clip durations shows each example as ``scene: ...`` / ``motion: ...`` /
``seconds: 4.5`` (instruction :data:`INSTRUCTION_SECONDS`), still ending with ``scene: <query>`` / ``motion:``, and
reads a duration from each answer (:func:`~.answers.parse_answer`: a ``seconds: X`` line, else a trailing number
with a unit; an implausible one is rejected, and the caller falls back to its length predictor). Without
``durations`` (the default) the prompt is the paper's, byte for byte. Answer parsing lives in :mod:`.answers`.

Backends:

- ``openai``: any OpenAI-compatible chat endpoint through the ``openai`` client (timeouts; retries with exponential
  backoff on connection errors, timeouts, 429 and 5xx are the client's own); answers cached on disk by prompt,
  model, parameters and seed.
- ``retrieval``: no LLM; a neighbour's low-level text drawn with probability softmax(similarity / T), distinct
  texts first, so ``n`` samples differ. Offline, deterministic for a seed.

When the LLM fails or answers garbage, ``on_error="fallback"`` uses ``retrieval`` for that query and reports a
:class:`~motiongpt_cli.errors.MotionGPTWarning` (``warnings.warn``); ``on_error="fail"`` raises. Never a silent wrong
answer.

:func:`make_prompter` builds a :class:`Prompter` from a :class:`PromptConfig` (settings and flags) and the
environment, and holds the one rule for API keys: ``OPENAI_API_KEY`` goes only to OpenAI itself or to the URL that
``OPENAI_BASE_URL`` names; a key for any other endpoint must be configured explicitly, so it is never leaked.
"""

from __future__ import annotations

import hashlib
import json
import string
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .. import validation
from ..atomic import atomic_write_text
from ..errors import InvalidValueError, MotionGPTWarning, PromptError
from .answers import (
    MAX_ACTION_WORDS,
    MAX_ACTIONS,
    MAX_ANSWER_SECONDS,
    MIN_ANSWER_SECONDS,
    GarbageAnswerError,
    answer_seconds,
    parse_answer,
    sanitize_answer,
)
from .index import Neighbour, RetrievalIndex

# the answer parsing lives in .answers; its names stay importable from here
__all__ = ["DEFAULT_TEMPLATE", "EXAMPLE_TEMPLATE", "EXAMPLE_TEMPLATE_SECONDS", "INSTRUCTION", "INSTRUCTION_SECONDS",
           "MAX_ACTIONS", "MAX_ACTION_WORDS", "MAX_ANSWER_SECONDS", "MAX_TOKENS", "MIN_ANSWER_SECONDS", "Backend",
           "GarbageAnswerError", "LLMSettings", "OnError", "OpenAIChat", "PromptConfig", "PromptError",
           "PromptResult", "Prompter", "ResponseCache", "answer_seconds", "build_prompt", "make_prompter",
           "parse_answer", "render_template", "resolve_backend", "retrieval_sample", "sanitize_answer"]  # fmt: skip

INSTRUCTION = "Convert scene to motion sequences according to the examples."
DEFAULT_TEMPLATE = "$instruction\n\n$examples\nscene: $text\nmotion:"
EXAMPLE_TEMPLATE = "scene: $high\nmotion: $low\n"
INSTRUCTION_SECONDS = "Convert scene to motion sequences and their duration in seconds according to the examples."
EXAMPLE_TEMPLATE_SECONDS = "scene: $high\nmotion: $low\nseconds: $seconds\n"
MAX_TOKENS = 64

OnError = Literal["fallback", "fail"]
Backend = Literal["openai", "retrieval"]


# ----------------------------------------------------------------------------------------------- the prompt
def render_template(template: str, values: dict[str, str]) -> str:
    """``$name`` substitution; a placeholder without a value, or a value without a placeholder, is an error."""
    tpl = string.Template(template)
    names = {m.group("named") or m.group("braced") for m in tpl.pattern.finditer(template)} - {None}
    unknown = names - set(values)
    if unknown:
        raise PromptError(f"prompt template uses unknown placeholders: {', '.join(sorted(unknown))}")
    if "text" not in names:
        raise PromptError("prompt template must contain $text (the query)")
    return tpl.substitute(values)


def build_prompt(query: str, examples: Sequence[Neighbour], template: str = DEFAULT_TEMPLATE, *,
                 durations: bool = False) -> str:  # fmt: skip
    """The paper's prompt ``[instruction, h_1, l_1, ..., h_k, l_k, query]``; the best example sits last.

    ``durations``: each example also shows its clip duration (``seconds: 4.5``, to 0.1 s) and the instruction asks
    for one; every example must have one."""
    examples = list(examples)
    if durations and any(ex.seconds is None for ex in examples):
        raise PromptError("a prompt with durations needs examples with durations (an index that records them)")
    if durations:
        tpl, instruction = string.Template(EXAMPLE_TEMPLATE_SECONDS), INSTRUCTION_SECONDS
    else:
        tpl, instruction = string.Template(EXAMPLE_TEMPLATE), INSTRUCTION
    # most similar last: small models copy the closest example most reliably
    shown = "".join(
        tpl.substitute(high=ex.high, low=ex.low, seconds=f"{ex.seconds:.1f}" if durations else "")
        for ex in reversed(examples)
    )
    return render_template(template, {"instruction": instruction, "examples": shown, "text": query.strip()})


# ----------------------------------------------------------------------------------------------- backends
def retrieval_sample(
    neighbours: Sequence[Neighbour], n: int, temperature: float, rng: np.random.Generator
) -> list[str]:
    """``n`` low-level texts of the neighbours, drawn with probability softmax(similarity / temperature).

    Probabilities of neighbours sharing a low-level text add up; distinct texts are drawn first (without
    replacement), so ``n`` samples are as diverse as the neighbourhood allows.
    """
    if not neighbours:
        raise PromptError("no neighbours to sample from")
    if temperature <= 0:
        raise PromptError(f"temperature must be positive, got {temperature}")
    sims = np.array([nb.similarity for nb in neighbours], dtype=np.float64)
    weights = np.exp((sims - sims.max()) / temperature)
    by_text: dict[str, float] = {}
    for nb, w in zip(neighbours, weights, strict=True):
        by_text[nb.low] = by_text.get(nb.low, 0.0) + float(w)
    texts = list(by_text)
    p = np.array([by_text[t] for t in texts])
    p /= p.sum()
    first = rng.choice(len(texts), size=min(n, len(texts)), replace=False, p=p)
    picks = [texts[i] for i in first]
    if n > len(texts):
        picks += [texts[i] for i in rng.choice(len(texts), size=n - len(texts), replace=True, p=p)]
    return picks


@dataclass
class LLMSettings:
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = None
    temperature: float = 0.7
    timeout: float = 30.0
    retries: int = 3
    max_tokens: int = MAX_TOKENS


class ResponseCache:
    """LLM answers on disk, one small JSON file per request hash (base URL, model, messages, parameters, seed)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None

    @staticmethod
    def key(request: dict) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode("utf-8")).hexdigest()

    def get(self, request: dict) -> str | None:
        if self.folder is None:
            return None
        path = self.folder / f"{self.key(request)}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))["answer"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, request: dict, answer: str) -> None:
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.folder / f"{self.key(request)}.json", json.dumps({"answer": answer}))
        except OSError:
            pass


class OpenAIChat:
    """One chat completion per call through the ``openai`` client; counts real requests in ``self.calls``."""

    def __init__(self, settings: LLMSettings, cache: ResponseCache | None = None) -> None:
        self.settings = settings
        self.cache = cache or ResponseCache(None)
        self.calls = 0
        self._client = None

    def _get_client(self):
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self.settings.api_key or "not-needed",
                base_url=self.settings.base_url or None,
                timeout=self.settings.timeout,
                max_retries=self.settings.retries,
            )
        return self._client

    def complete(self, prompt: str, seed: int | None) -> str:
        s = self.settings
        request = {
            "base_url": s.base_url or "https://api.openai.com/v1",
            "model": s.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
            "seed": seed,
        }
        cached = self.cache.get(request) if seed is not None else None
        if cached is not None:
            return cached
        import openai

        kwargs = {k: v for k, v in request.items() if k != "base_url" and v is not None}
        try:
            self.calls += 1
            response = self._get_client().chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise PromptError(f"the LLM at {request['base_url']} timed out after {s.timeout:g} s "
                              f"({s.retries} retries)") from None  # fmt: skip
        except openai.APIConnectionError:
            raise PromptError(f"cannot reach the LLM at {request['base_url']}",
                              hint="is the server running? check --base-url / OPENAI_BASE_URL") from None  # fmt: skip
        except openai.AuthenticationError:
            raise PromptError(f"the LLM at {request['base_url']} refused the API key",
                              hint="set OPENAI_API_KEY (it is never printed)") from None  # fmt: skip
        except openai.APIStatusError as exc:
            raise PromptError(f"the LLM at {request['base_url']} answered HTTP {exc.status_code}"
                              + (f" after {s.retries} retries" if exc.status_code >= 500 or exc.status_code == 429
                                 else "")) from None  # fmt: skip
        except openai.OpenAIError as exc:
            raise PromptError(f"the LLM request failed: {type(exc).__name__}") from None
        try:
            answer = response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            raise GarbageAnswerError("the LLM response has no message") from None
        if seed is not None:
            self.cache.put(request, answer)
        return answer


# ----------------------------------------------------------------------------------------------- orchestration
@dataclass
class PromptResult:
    query: str
    lows: list[str]
    backend: str  # "openai", "retrieval", or "retrieval (fallback)"
    examples: list[Neighbour]
    prompt: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: list[float | None] = field(default_factory=list)  # one per proposal: the LLM's duration, or None

    def to_json(self, *, seconds: bool = False) -> dict:
        """The result as JSON; ``seconds`` adds each proposal's duration and each example's (null when unknown)."""
        examples = [{"high": e.high, "low": e.low, "similarity": round(e.similarity, 4)} for e in self.examples]
        if seconds:
            for row, e in zip(examples, self.examples, strict=True):
                row["seconds"] = None if e.seconds is None else round(e.seconds, 2)
        out = {"query": self.query, "low": self.lows, "backend": self.backend, "examples": examples}
        if seconds:
            out["seconds"] = list(self.seconds)
        return out


class Prompter:
    """Low-level texts for queries: KATE examples from ``index``, then an LLM (``chat``) or retrieval sampling."""

    def __init__(
        self,
        index: RetrievalIndex,
        encoder,
        *,
        backend: Backend = "retrieval",
        chat: OpenAIChat | None = None,
        k: int = 10,
        on_error: OnError = "fallback",
        retrieval_temperature: float = 0.05,
        template: str = DEFAULT_TEMPLATE,
    ) -> None:
        index.check_encoder(encoder.name)
        if backend == "openai" and chat is None:
            raise PromptError("the openai backend needs LLM settings")
        if backend not in ("openai", "retrieval"):
            raise PromptError(f"unknown backend {backend!r} (openai or retrieval)")
        if k < 1:
            raise PromptError(f"k must be at least 1, got {k}")
        if on_error not in ("fallback", "fail"):
            raise PromptError(f"on_error must be fallback or fail, got {on_error!r}")
        self.index, self.encoder, self.backend, self.chat = index, encoder, backend, chat
        self.k, self.on_error, self.temperature, self.template = k, on_error, retrieval_temperature, template

    def examples(self, queries: Sequence[str]) -> list[list[Neighbour]]:
        return self.index.search(self.encoder.encode(list(queries)), self.k)

    def run(self, queries: Sequence[str], n: int = 3, seed: int | None = None, *,
            durations: bool = False) -> list[PromptResult]:  # fmt: skip
        """``n`` proposals per query. ``durations``: with the ``openai`` backend and examples that have durations,
        send the duration prompt and give each proposal the answer's duration (``result.seconds``; None when the
        answer has no usable one). Otherwise, and always for the retrieval backend (fallback included), durations
        are None: a retrieved neighbour's clip length is one clip of another caption, and the caller's length
        predictor, fitted on every training pair, estimates the query's length better."""
        if n < 1:
            raise PromptError(f"n must be at least 1, got {n}")
        queries = [q.strip() for q in queries]
        if not queries or any(not q for q in queries):
            raise PromptError("empty text", hint="give a non-empty high-level description")
        results = []
        for i, (query, examples) in enumerate(zip(queries, self.examples(queries), strict=True)):
            rng = np.random.default_rng(None if seed is None else [seed, i])
            ask = durations and self.backend == "openai" and all(ex.seconds is not None for ex in examples)
            prompt = build_prompt(query, examples, self.template, durations=ask)
            result = PromptResult(query, [], self.backend, examples, prompt)
            if self.backend == "openai":
                try:
                    parsed = []
                    for j in range(n):  # a seed per query and sample: repeated captions get their own answers
                        answer = self.chat.complete(prompt, None if seed is None else seed + i * n + j)
                        parsed.append(parse_answer(answer) if ask else (sanitize_answer(answer), None))
                    result.lows, result.seconds = [lo for lo, _ in parsed], [sec for _, sec in parsed]
                except PromptError as exc:
                    if self.on_error == "fail":
                        raise
                    message = f"{exc}; using the retrieval backend for {query!r}"
                    result.warnings.append(message)
                    warnings.warn(message, MotionGPTWarning, stacklevel=2)
                    result.backend = "retrieval (fallback)"
            if not result.lows:
                result.lows = retrieval_sample(examples, n, self.temperature, rng)
                result.seconds = [None] * n
            results.append(result)
        return results


# ----------------------------------------------------------------------------------------------- the factory
@dataclass
class PromptConfig:
    """How low-level texts are proposed: the ``prompt.*`` settings, with ``temperature`` an explicit request that
    applies to whichever backend runs (the LLM's sampling temperature, or the retrieval softmax temperature)."""

    backend: str = "auto"  # auto: openai when a base URL is configured, else retrieval
    model: str = "gpt-4o-mini"
    base_url: str = ""
    api_key: str = ""
    examples: int = 10
    on_error: OnError = "fallback"
    llm_temperature: float = 0.7
    retrieval_temperature: float = 0.05
    temperature: float | None = None
    timeout: float = 30.0
    retries: int = 3
    cache: bool = True

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "openai", "retrieval"):
            raise InvalidValueError(f"backend must be auto, openai or retrieval, got {self.backend!r}")
        if self.on_error not in ("fallback", "fail"):
            raise InvalidValueError(f"on_error must be fallback or fail, got {self.on_error!r}")
        validation.NEIGHBOURS.check("k", self.examples)
        validation.LLM_TEMPERATURE.check("llm temperature", self.llm_temperature)
        validation.RETRIEVAL_TEMPERATURE.check("retrieval temperature", self.retrieval_temperature)
        validation.TIMEOUT.check("timeout", self.timeout)
        validation.RETRIES.check("retries", self.retries)
        if self.temperature is not None:
            validation.LLM_TEMPERATURE.check("temperature", self.temperature)

    @classmethod
    def from_settings(cls, settings, **overrides) -> PromptConfig:
        """From :class:`~motiongpt_cli.settings.Settings` (``prompt.*``); overrides that are None are ignored."""
        values = {"backend": settings["prompt.backend"], "model": settings["prompt.model"],
                  "base_url": settings["prompt.base_url"], "api_key": settings["prompt.api_key"],
                  "examples": settings["prompt.examples"], "on_error": settings["prompt.on_error"],
                  "llm_temperature": settings["prompt.temperature"],
                  "retrieval_temperature": settings["prompt.retrieval_temperature"],
                  "timeout": settings["prompt.timeout"], "retries": settings["prompt.retries"]}  # fmt: skip
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def resolve_backend(config: PromptConfig, env: Mapping[str, str]) -> tuple[str, str | None, str | None]:
    """``(backend, base_url, api_key)`` after the auto rule and the API-key routing rule."""
    url = config.base_url or env.get("OPENAI_BASE_URL") or None
    backend = config.backend
    if backend == "auto":
        backend = "openai" if url else "retrieval"
    if backend != "openai":
        return backend, url, None
    key = config.api_key or None
    if key is None and (url is None or url == env.get("OPENAI_BASE_URL")):
        key = env.get("OPENAI_API_KEY") or None
    if key is None and url is None:
        raise PromptError("the openai backend needs an API key or a --base-url",
                          hint="export OPENAI_API_KEY=..., or use --backend retrieval (offline)")  # fmt: skip
    return backend, url, key


def make_prompter(index_path: Path, config: PromptConfig, *, env: Mapping[str, str], cache_dir: Path | None,
                  device: str = "cpu") -> Prompter:  # fmt: skip
    """A :class:`Prompter` over the index at ``index_path``, its query encoder the index's own."""
    from .encoders import load_encoder
    from .index import load_index

    backend, url, key = resolve_backend(config, env)
    retrieval_t = config.retrieval_temperature
    if backend == "retrieval" and config.temperature is not None:
        retrieval_t = validation.RETRIEVAL_TEMPERATURE.check("temperature (retrieval backend)", config.temperature)
    index = load_index(index_path)
    encoder = load_encoder(index.encoder, device=device, cache_dir=cache_dir)
    chat = None
    if backend == "openai":
        llm = LLMSettings(model=config.model, base_url=url, api_key=key, timeout=config.timeout,
                          retries=config.retries,
                          temperature=config.llm_temperature if config.temperature is None else config.temperature)
        chat = OpenAIChat(llm, ResponseCache(cache_dir / "llm" if config.cache and cache_dir else None))
    return Prompter(index, encoder, backend=backend, chat=chat, k=config.examples, on_error=config.on_error,
                    retrieval_temperature=retrieval_t)  # fmt: skip
