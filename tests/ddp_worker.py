"""Run by tests/test_training.py under ``torch.distributed.run``: trains TINY_RUN with DDP on gloo and dumps this
rank's final parameters and per-step losses to ``OUT/rank<r>.pt``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TINY_RUN  # noqa: E402
from motiongpt_cli.data.prepare import load_dataset  # noqa: E402
from motiongpt_cli.training import DistInfo, run_config_from_dict, train  # noqa: E402


def main() -> None:
    data, out, cache = (Path(a) for a in sys.argv[1:4])
    dist = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    torch.distributed.init_process_group("gloo")
    records, mean, std = load_dataset(data)
    losses: list[float] = []
    captured = {}

    import motiongpt_cli.training as training

    original = training.MotionDenoiser

    def capture(config):
        captured["model"] = original(config)
        return captured["model"]

    training.MotionDenoiser = capture
    train(run_config_from_dict(TINY_RUN), records, mean, std, out / "run", dist=dist, cache_dir=cache,
          on_step=lambda r: losses.append(r.losses["total"]))  # fmt: skip
    params = {k: v.detach().clone() for k, v in captured["model"].state_dict().items()}
    torch.save({"params": params, "losses": losses}, out / f"rank{dist.rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
