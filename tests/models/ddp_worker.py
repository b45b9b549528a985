"""Started by torchrun in tests/models/test_trainer.py: trains the toy GAN and records what this process saw."""

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from inpaintbench.datasets.loader import InpaintDataset
from inpaintbench.models.train import TrainConfig, train
from tests.models.toy_gan import ToyConfig, ToyGAN

data, out = Path(sys.argv[1]), Path(sys.argv[2])
torch.manual_seed(int(os.environ["RANK"]))  # different initial weights per process: train() must broadcast
model = ToyGAN(ToyConfig())
train(model, InpaintDataset(data, "train", masks=["L2"], seed=1), out / "run",
      TrainConfig(steps=6, batch_size=8, seed=3, checkpoint_every=3, log_every=1))
rank = dist.get_rank()
weights = {k: v.tolist() for k, v in model.state_dict().items()}
(out / f"rank{rank}.json").write_text(json.dumps({"seen": model.seen, "weights": weights}))
dist.destroy_process_group()
