"""Retrieval-index query latency at 100k entries (target: < 50 ms per query on this CPU).

    python benchmarks/bench_index.py                 # 100k random unit vectors, 384-d (MiniLM's size)
    python benchmarks/bench_index.py --entries 1000000

Times, in one run: loading the saved index, one search (k=10) over all entries (median of 50), the same search
done naively (a full argsort instead of argpartition) as the baseline, and MiniLM encoding one query, which a
``motiongpt index query`` / ``prompt`` call adds on top.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from motiongpt_cli.text.index import RetrievalIndex, load_index


def _median_ms(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--no-encoder", action="store_true", help="skip timing MiniLM")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((args.entries, args.dim), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    texts = [f"text {i}" for i in range(args.entries)]
    index = RetrievalIndex(emb, texts, texts, "minilm", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        path = index.save(Path(tmp) / "index.npz")
        size_mb = path.stat().st_size / 1e6
        start = time.perf_counter()
        index = load_index(path)
        load_ms = (time.perf_counter() - start) * 1000
    query = rng.standard_normal(args.dim).astype(np.float32)
    query /= np.linalg.norm(query)
    search_ms = _median_ms(lambda: index.search(query, 10), args.reps)

    def naive():
        sims = index.embeddings @ query
        return np.argsort(-sims)[:10]

    naive_ms = _median_ms(naive, args.reps)
    assert [n.row for n in index.search(query, 10)[0]] == naive().tolist()
    print(f"{args.entries} entries x {args.dim}-d: file {size_mb:.1f} MB, load {load_ms:.0f} ms")
    print(f"search k=10: {search_ms:.2f} ms (median of {args.reps}); naive full sort: {naive_ms:.2f} ms "
          f"({naive_ms / search_ms:.1f}x slower)")  # fmt: skip
    if not args.no_encoder:
        from motiongpt_cli.text.encoders import load_encoder

        encoder = load_encoder("minilm")
        encode_ms = _median_ms(lambda: encoder.encode(["a person waves with the right hand"]), 20)
        print(f"MiniLM encoding one query: {encode_ms:.1f} ms; encode + search: {encode_ms + search_ms:.1f} ms")


if __name__ == "__main__":
    main()
