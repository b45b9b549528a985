import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from inpaintbench.benchmarks.metrics.accumulate import MeanAccumulator

VALUES = {"psnr": torch.linspace(20, 30, 40), "l2": torch.linspace(1e-3, 5e-3, 40)}


def _expected():
    out = {}
    for name, v in VALUES.items():
        v = v.double()
        out[name] = (v.mean().item(), 1.959964 * v.std().item() / math.sqrt(len(v)))
    return out


def test_single_process_mean_ci_and_dataset_psnr():
    acc = MeanAccumulator(["psnr", "l2"])
    acc.update({k: v[:25] for k, v in VALUES.items()})
    acc.update({k: v[25:] for k, v in VALUES.items()})
    acc.update({"psnr": torch.tensor([float("nan")])})  # skipped
    result = acc.compute()
    for name, (mean, ci) in _expected().items():
        assert result[name]["n"] == 40
        assert result[name]["mean"] == pytest.approx(mean) and result[name]["ci95"] == pytest.approx(ci)
    assert acc.dataset_psnr() == pytest.approx(10 * math.log10(1 / VALUES["l2"].double().mean().item()))


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    acc = MeanAccumulator(["psnr", "l2"])
    acc.update({k: v[rank::world] for k, v in VALUES.items()})  # disjoint shards
    acc.reduce()
    torch.save(acc.compute(), out / f"{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_reduction_equals_one_process(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, tmp_path), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in range(2)]
    assert results[0] == results[1]
    for name, (mean, ci) in _expected().items():
        assert results[0][name]["n"] == 40
        assert results[0][name]["mean"] == pytest.approx(mean) and results[0][name]["ci95"] == pytest.approx(ci)
