"""Run a short post-training under torchrun and write its rows as JSON (used by test_train.py).

torchrun --nproc_per_node 2 tests/train_worker.py OUT.json [MICRO_BATCH_SIZE]
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from prune_fixtures import tiny_model  # noqa: E402
from train_fixtures import pattern_data  # noqa: E402

from p2law.train import TrainConfig, post_train  # noqa: E402

CONFIG = dict(total_tokens=32 * 16 * 12, lr=3e-3, batch_size=16, n_checkpoints=4, seed=3)


def main(out, micro=None):
    torch.set_num_threads(1)
    cfg = TrainConfig(**CONFIG, micro_batch_size=int(micro) if micro else None)
    rows = post_train(tiny_model(seed=5), pattern_data(), cfg, rows_meta={"run_id": "dist"}, progress=False)
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        Path(out).write_text(json.dumps(rows))


if __name__ == "__main__":
    main(*sys.argv[1:3])
