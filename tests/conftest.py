"""Shared fixtures: the real HumanML3D reference sample (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# CI runs the same examples every time (a failure found locally is replayed from the example database there is
# none in a clean clone); locally hypothesis keeps exploring new ones.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_user_environment(tmp_path_factory):
    """Tests never read the developer's own settings: a temporary XDG config folder (the user config file lives
    there) and no MOTIONGPT_* variables from the shell. Session-scoped and on os.environ directly, so hypothesis
    tests see it too."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("MOTIONGPT_")]:
        del os.environ[name]
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("xdg-config"))
    yield
    os.environ.clear()
    os.environ.update(saved)
REFERENCE_DATA = PROJECT_ROOT.parent / "shared" / "reference-data"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (expected ../shared/reference-data beside the project)")
    return path


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return _require(REFERENCE_DATA)


@pytest.fixture(scope="session")
def humanml3d_dir(reference_dir: Path) -> Path:
    return _require(reference_dir / "humanml3d")


@pytest.fixture(scope="session")
def sample_features(humanml3d_dir: Path) -> np.ndarray:
    """Real HumanML3D clip 012314: (170, 263) float32 features."""
    return np.load(_require(humanml3d_dir / "new_joint_vecs" / "012314.npy"))


@pytest.fixture(scope="session")
def sample_joints(humanml3d_dir: Path) -> np.ndarray:
    """Real HumanML3D clip 012314: (170, 22, 3) float32 joints, metres, Y up."""
    return np.load(_require(humanml3d_dir / "new_joints" / "012314.npy"))


@pytest.fixture(scope="session")
def template_bvh(reference_dir: Path) -> Path:
    return _require(reference_dir / "bvh" / "smpl_template.bvh")


TINY_RUN = {
    "model": {"width": 32, "layers": 1, "heads": 2, "ff_size": 64, "dropout": 0.0, "max_frames": 64,
              "high_dim": 384, "low_dim": 384},
    "text": {"high_encoder": "minilm", "high_dim": 384, "low_encoder": "minilm", "low_dim": 384},
    "diffusion": {"num_train_timesteps": 100},
    "train": {"steps": 4, "batch_size": 4, "lr": 1e-3, "warmup_steps": 2, "checkpoint_every": 2, "log_every": 1,
              "ema_decay": 0.9},
}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A 16-clip synthetic corpus (+ mirrors) in HumanML3D layout, and its prepared dataset ``dataset.jsonl``."""
    from motiongpt_cli.data.corpus import generate_corpus
    from motiongpt_cli.data.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("corpus")
    generate_corpus(root / "synth", clips=16, seed=3, workers=1, max_seconds=4.0)
    prepare_dataset(root / "synth", root / "synth", root / "dataset.jsonl")
    return root / "dataset.jsonl"


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def tiny_run() -> dict:
    """A fresh copy of TINY_RUN (also importable: ``from conftest import TINY_RUN``)."""
    import copy

    return copy.deepcopy(TINY_RUN)


def write_t2m_evaluator(folder: Path, reference_dir: Path, *, seed: int = 0) -> dict:
    """A randomly initialised T2M evaluator in the official download layout (``finest.tar`` with its optimiser
    entries, the real ``t2m_mean``/``t2m_std``, and ``glove/`` with the real vocabulary pickles and random 300-d
    vectors: the real vectors file is not redistributable). Returns the modules, for comparisons by hand."""
    import torch

    from motiongpt_cli.evaluation.t2m import MotionEncoderBiGRUCo, MovementConvEncoder, TextEncoderBiGRUCo

    source = reference_dir / "t2m-evaluator"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    torch.manual_seed(seed)
    modules = {"text_encoder": TextEncoderBiGRUCo(), "motion_encoder": MotionEncoderBiGRUCo(),
               "movement_encoder": MovementConvEncoder()}  # fmt: skip
    state = {k: m.state_dict() for k, m in modules.items()}
    state.update(opt_text_encoder={"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
                 opt_motion_encoder={"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]}, epoch=3, iter=42)
    (folder / "glove").mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "finest.tar")
    for name in ("t2m_mean.npy", "t2m_std.npy"):
        (folder / name).write_bytes((source / name).read_bytes())
    for name in ("our_vab_words.pkl", "our_vab_idx.pkl"):
        (folder / "glove" / name).write_bytes((source / name).read_bytes())
    vectors = np.random.default_rng(seed).standard_normal((4199, 300)).astype(np.float32)
    np.save(folder / "glove" / "our_vab_data.npy", vectors)
    return modules


TINY_EVALUATOR = {"movement_size": 16, "motion_hidden": 32, "embed_size": 16, "steps": 30, "batch_size": 8,
                  "lr": 1e-3}  # fmt: skip


@pytest.fixture(scope="session")
def eval_corpus(tmp_path_factory) -> Path:
    """A corpus whose test split has at least 32 clips (R-precision's batch)."""
    from motiongpt_cli.data.corpus import generate_corpus
    from motiongpt_cli.data.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("eval-corpus")
    generate_corpus(root / "synth", clips=120, seed=5, workers=1, max_seconds=4.0)
    prepare_dataset(root / "synth", root / "synth", root / "dataset.jsonl")
    return root / "dataset.jsonl"


@pytest.fixture(scope="session")
def eval_models(eval_corpus, tmp_path_factory, embedding_cache):
    """(a tiny trained evaluator, the model directory of a tiny 4-step model), both on ``eval_corpus``."""
    import copy

    from motiongpt_cli.data.prepare import load_dataset
    from motiongpt_cli.evaluation.learned import EvaluatorConfig, train_evaluator
    from motiongpt_cli.training import run_config_from_dict, train

    root = tmp_path_factory.mktemp("eval-models")
    records, mean, std = load_dataset(eval_corpus)
    ev = train_evaluator(records, mean, std, root / "evaluator", EvaluatorConfig(**TINY_EVALUATOR),
                         cache_dir=embedding_cache)  # fmt: skip
    model = train(run_config_from_dict(copy.deepcopy(TINY_RUN)), records, mean, std, root / "run",
                  cache_dir=embedding_cache)  # fmt: skip
    return ev, model.model_dir
