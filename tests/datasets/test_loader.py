import io
import itertools
import tarfile

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from inpaintbench import InpaintbenchError
from inpaintbench.datasets import open_dataset
from inpaintbench.datasets.loader import InpaintDataset
from inpaintbench.datasets.shards import Rejected, Sample, write_dataset
from inpaintbench.datasets.stream import ShardStream, partition

CLASSES = ["astronaut", "coffee", "chelsea"]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """A JPEG dataset at 48x48 written as many small shards: train has 21 samples in 6 shards (one rejected)."""
    import skimage.data

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]

    def make(candidate):
        label, i = candidate
        if i == 3:
            return Rejected(f"toy-c{label}_{i:03d}", "too dark")
        crop = photos[label][10 * i:10 * i + 96, 7 * i:7 * i + 96]
        image = np.asarray(Image.fromarray(crop).resize((48, 48), Image.Resampling.LANCZOS))
        return Sample(f"toy-c{label}_{i:03d}", image, label, {"label_name": CLASSES[label]})

    candidates = {"train": [(i % 3, i) for i in range(22)], "val": [(i % 3, 30 + i) for i in range(5)]}
    out = tmp_path_factory.mktemp("data") / "toy"
    write_dataset(out, "toy", candidates, make, classes=CLASSES, build_params={"toy": 1},
                  card={"title": "toy", "description": "toy"}, image_format="jpg", samples_per_shard=4)
    return out


def _split_keys(path, split):
    manifest = pd.read_parquet(path / "manifest.parquet")
    return manifest.loc[(manifest["split"] == split) & (manifest["status"] == "ok"), "key"].tolist()


def _items(ds, workers, batch_size=4):
    """Every item a DataLoader yields, as a flat list of dicts (in the order it yields them)."""
    out = []
    for batch in DataLoader(ds, batch_size=batch_size, num_workers=workers):
        for j in range(len(batch["key"])):
            out.append({name: value[j] for name, value in batch.items()})
    return out


def test_loader_yields_images_and_masks(sample32):
    ds = open_dataset(sample32, "train", masks=["L1", "L3"], seed=3)
    assert isinstance(ds, ShardStream) and len(ds) == 60
    item = next(iter(ds))
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["mask"].shape == (1, 32, 32) and set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert 0.05 < item["mask"].mean() < 0.35
    assert item["index"] == 0 and item["key"] == "sample-astronaut_0000" and item["label"] == 0
    assert torch.equal(ds[0]["image"], item["image"]) and torch.equal(ds[0]["mask"], item["mask"])
    assert open_dataset(sample32, "val")[0]["mask"].sum() == 0  # no masks: zeros


@pytest.mark.parametrize(("dataset", "split"), [("sample32", "test"), ("sharded", "train")])
def test_stream_equals_in_memory_dataset(dataset, split, request):
    """Same pixels (PNG and JPEG), masks and labels as InpaintDataset; one process gives the split order."""
    path = request.getfixturevalue(dataset)
    ds = open_dataset(path, split, masks=["L2", "L3"], seed=5)
    ref = InpaintDataset(path, split, masks=["L2", "L3"], seed=5)
    items = list(ds)
    assert [it["index"] for it in items] == list(range(len(ref))) and [it["key"] for it in items] == ref.keys
    for it in items:
        assert torch.equal(it["image"], ref[it["index"]]["image"]) and torch.equal(it["mask"], ref[it["index"]]["mask"])
        assert it["label"] == ref.labels[it["index"]]
    assert torch.equal(ds.images, ref.images)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("dataset", ["sharded", "sample32"])
def test_dataloader_yields_every_key_once(dataset, workers, request):
    path = request.getfixturevalue(dataset)
    keys = [it["key"] for it in _items(open_dataset(path, "train"), workers)]
    assert sorted(keys) == sorted(_split_keys(path, "train")) and len(set(keys)) == len(keys)


def test_masks_do_not_depend_on_workers(sample32):
    ds = open_dataset(sample32, "train", masks=["L2", "L3"], seed=1)
    one = {it["index"].item(): it for it in _items(ds, 0)}
    two = {it["index"].item(): it for it in _items(ds, 2)}
    assert one.keys() == two.keys() == set(range(60))
    for i, a in one.items():
        assert torch.equal(a["mask"], two[i]["mask"]) and torch.equal(a["image"], two[i]["image"])


@pytest.mark.parametrize("dataset", ["sharded", "sample32"])
def test_ddp_ranks_and_workers_partition_the_split(dataset, request):
    """World size 2 x 2 workers: the four parts are disjoint, their union is the split, len(ds) is per rank."""
    path = request.getfixturevalue(dataset)
    seen = []
    for rank in range(2):
        ds = open_dataset(path, "train", rank=rank, world_size=2)
        got = [it["key"] for it in _items(ds, 2)]
        assert len(ds) == len(got)
        seen += got
    assert sorted(seen) == sorted(_split_keys(path, "train"))  # union = split, and no key twice: disjoint
    ds = open_dataset(path, "train")
    slots = [{e.key for e in ds.plan(r, 2, w, 2)} for r, w in itertools.product(range(2), range(2))]
    assert all(slots) and all(not (a & b) for a, b in itertools.combinations(slots, 2))


def test_rank_comes_from_the_environment(sharded, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    parts = []
    for rank in range(3):
        monkeypatch.setenv("RANK", str(rank))
        parts.append([it["key"] for it in open_dataset(sharded, "train")])
    assert sorted(sum(parts, [])) == sorted(_split_keys(sharded, "train"))
    assert [len(p) for p in parts] == [7, 8, 6]  # shards 0,3 | 1,4 | 2,5 holding 3,4,4,4,4,2 samples
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(InpaintbenchError, match="outside a world of size 3"):
        list(open_dataset(sharded, "train"))


def test_pickled_dataset_keeps_its_rank(sharded, monkeypatch):
    """Spawned DataLoader workers unpickle the dataset without a process group: it carries the rank along."""
    import pickle

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    data = pickle.dumps(open_dataset(sharded, "train"))
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert pickle.loads(data).world() == (1, 2) and open_dataset(sharded, "train").world() == (0, 1)


def test_partition_rule(sharded):
    """Whole shards when there are enough of them, else every n-th sample; always disjoint and complete."""
    entries = open_dataset(sharded, "train").entries  # 21 samples in 6 shards
    assert {e.shard for e in partition(entries, 4, 1)} == {"train-000001.tar", "train-000005.tar"}
    assert [e.index for e in partition(entries, 8, 3)] == [3, 11, 19]
    for parts, rng in itertools.product([1, 2, 3, 6, 7, 21, 30], [None, 0]):
        got = [partition(entries, parts, p, None if rng is None else np.random.default_rng(rng)) for p in range(parts)]
        assert sorted(e.index for part in got for e in part) == list(range(21))


def test_eval_order_is_deterministic_and_recoverable(sharded):
    runs = [[(it["key"], it["index"].item()) for it in _items(open_dataset(sharded, "train"), 2)] for _ in range(2)]
    assert runs[0] == runs[1]
    assert [k for k, _ in sorted(runs[0], key=lambda p: p[1])] == _split_keys(sharded, "train")


def test_shuffle_is_seeded_by_epoch(sharded):
    ds = open_dataset(sharded, "train", shuffle=8, seed=4)
    order = [[it["key"] for it in _items(ds, 2)] for _ in range(2)]
    assert order[0] == order[1] and sorted(order[0]) == sorted(_split_keys(sharded, "train"))
    assert order[0] != _split_keys(sharded, "train")
    ds.set_epoch(1)
    again = [it["key"] for it in _items(ds, 2)]
    assert again != order[0] and sorted(again) == sorted(order[0])
    one = open_dataset(sharded, "train", shuffle=8, seed=4)
    assert [it["key"] for it in one] != [it["key"] for it in open_dataset(sharded, "train", shuffle=8, seed=5)]


def test_resize_on_the_fly_matches_pil_lanczos(sharded):
    ds = open_dataset(sharded, "val", masks=["L3"], size=24)
    items = list(ds)
    assert len(items) == 5 and ds.size == 24
    with tarfile.open(sharded / "val" / "val-000000.tar") as tar:
        data = tar.extractfile(f"{items[0]['key']}.jpg").read()
    decoded = Image.open(io.BytesIO(data)).convert("RGB")
    expected = np.asarray(decoded.resize((24, 24), Image.Resampling.LANCZOS, reducing_gap=None))
    assert items[0]["image"].shape == (3, 24, 24) and items[0]["mask"].shape == (1, 24, 24)
    assert torch.equal(items[0]["image"], torch.from_numpy(expected.copy()).permute(2, 0, 1).float() / 255)
    same = list(open_dataset(sharded, "val", size=48))  # the stored size: no resampling
    assert torch.equal(same[0]["image"], torch.from_numpy(np.array(decoded)).permute(2, 0, 1).float() / 255)


def test_class_filter_keeps_indices_and_masks(sharded):
    every = {it["key"]: it for it in open_dataset(sharded, "train", masks=["L2"])}
    for classes in (["coffee", "chelsea"], [1, 2], ("chelsea", 1)):
        ds = open_dataset(sharded, "train", masks=["L2"], classes=classes)
        items = _items(ds, 2)
        assert {it["label"].item() for it in items} == {1, 2} and len(items) == len(ds) == 14
        for it in items:
            assert it["index"] == every[it["key"]]["index"] and torch.equal(it["mask"], every[it["key"]]["mask"])
    assert len(open_dataset(sharded, "train", classes="astronaut")) == 7


@pytest.mark.parametrize(("options", "message"), [
    ({"classes": ["astronaut", "dog"]}, "unknown class 'dog'"),
    ({"classes": [3]}, "unknown class 3"),
    ({"size": 64}, "size=64 would upscale"),
    ({"size": 0}, "size=0 must be at least 1"),
    ({"shuffle": -1}, "shuffle must be"),
])
def test_bad_inputs_are_one_line_errors(sharded, options, message):
    with pytest.raises(InpaintbenchError, match=message) as err:
        open_dataset(sharded, "train", **options)
    assert "\n" not in str(err.value)


def test_mixed_sizes_need_size_for_masks(tmp_path):
    rng = np.random.default_rng(0)

    def make(i):
        side = 32 if i % 2 else 40
        return Sample(f"mix-{i}", rng.integers(0, 256, (side, side, 3), dtype=np.uint8), 0)

    write_dataset(tmp_path / "mix", "mix", {"train": [0, 1, 2]}, make, classes=["x"], build_params={},
                  card={"title": "mix", "description": "mix"}, image_format="png")
    plain = list(open_dataset(tmp_path / "mix", "train"))
    assert [it["image"].shape[1:] == it["mask"].shape[1:] for it in plain] == [True] * 3
    assert {it["image"].shape[-1] for it in plain} == {32, 40}
    with pytest.raises(InpaintbenchError, match="mixes image sizes; pass size="):
        open_dataset(tmp_path / "mix", "train", masks=["L1"])
    items = list(open_dataset(tmp_path / "mix", "train", masks=["L1"], size=16))
    assert {it["image"].shape for it in items} == {(3, 16, 16)} and {it["mask"].shape for it in items} == {(1, 16, 16)}
    with pytest.raises(InpaintbenchError, match="no shards for split 'val'"):
        open_dataset(tmp_path / "mix", "val")


def test_missing_samples_in_a_shard_are_reported(sharded, tmp_path):
    import shutil

    copy = tmp_path / "toy"
    shutil.copytree(sharded, copy)
    shard = copy / "val" / "val-000000.tar"
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if "c0_030" not in m.name]
    with tarfile.open(shard, "w") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
    with pytest.raises(InpaintbenchError, match="shards hold 4 of the 5 samples"):
        list(open_dataset(copy, "val"))


def test_epochs_draw_new_masks(sample32):
    ds = open_dataset(sample32, "train", masks=["L3"], seed=1)
    first = ds.draw_mask(0)
    ds.set_epoch(1)
    assert not torch.equal(first, ds.draw_mask(0))
    assert torch.equal(next(iter(ds))["mask"], ds.draw_mask(0))


def _ddp_worker(rank, path, rendezvous, out):
    import json

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    try:
        ds = open_dataset(path, "train", masks=["L2"])  # rank and world size from the process group
        items = _items(ds, 2)
        keys = [it["key"] for it in items]
        masks_ok = all(torch.equal(it["mask"], ds.draw_mask(it["index"].item())) for it in items)
        (out / f"rank{rank}.json").write_text(json.dumps({"keys": keys, "len": len(ds), "masks_ok": masks_ok}))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("dataset", ["sharded", "sample32"])
def test_real_ddp_with_gloo(dataset, request, tmp_path):
    """Two processes in a gloo process group, two DataLoader workers each: every key once, masks by index."""
    import json

    import torch.multiprocessing as mp

    path = request.getfixturevalue(dataset)
    # fork, not spawn: spawned processes re-import torch and the package (about 15 s on two cores, not 1 s)
    mp.start_processes(_ddp_worker, args=(path, tmp_path / "rendezvous", tmp_path), nprocs=2, start_method="fork")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert sorted(ranks[0]["keys"] + ranks[1]["keys"]) == sorted(_split_keys(path, "train"))
    assert all(r["len"] == len(r["keys"]) and r["masks_ok"] for r in ranks)


def test_inpaint_dataset_reads_a_large_split_from_the_shards(sharded, monkeypatch):
    """Read by byte range (what a split over 2 GiB gets), the items equal those of the in-memory split."""
    from inpaintbench.datasets import loader

    in_memory = InpaintDataset(sharded, "train", masks=["L2"], seed=4, in_memory=True)
    monkeypatch.setattr(loader, "IN_MEMORY_BYTES", 48 * 48 * 3 * 20)  # 21 images of 48 px: over the limit
    from_shards = InpaintDataset(sharded, "train", masks=["L2"], seed=4)
    assert from_shards._memory is None and len(from_shards) == len(in_memory) == 21
    for i in range(21):
        a, b = in_memory[i], from_shards[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"]) and a["label"] == b["label"]
    assert from_shards._memory is None  # nothing was kept
    # forked DataLoader workers open their own handles and read the same bytes
    batches = [b["image"] for b in DataLoader(from_shards, batch_size=5, num_workers=2)]
    assert torch.equal(torch.cat(batches), in_memory.images.float() / 255.0)
    monkeypatch.setattr(loader, "IN_MEMORY_BYTES", 48 * 48 * 3 * 21)  # exactly at the limit: in memory
    assert InpaintDataset(sharded, "train")._memory is not None


def test_inpaint_dataset_refuses_a_shard_that_lost_its_images(sharded, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(sharded, broken)
    shard = broken / "train" / "train-000000.tar"
    with tarfile.open(shard) as tar:
        kept = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if not m.name.endswith(".jpg")]
    with tarfile.open(shard, "w") as tar:
        for member, data in kept:
            tar.addfile(member, io.BytesIO(data))
    with pytest.raises(InpaintbenchError, match="has no image for toy-c0_000, which the manifest lists"):
        InpaintDataset(broken, "train", in_memory=False)


def _flip_a_byte(shard, key):
    from inpaintbench.datasets.shards import image_members

    offset, size = image_members(shard)[key]
    with open(shard, "r+b") as f:  # one byte of an image member changed; the tar is still valid
        f.seek(offset + size // 2)
        byte = f.read(1)
        f.seek(offset + size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_images_are_checked_against_the_manifest_sha256(sharded, tmp_path):
    import shutil

    data = tmp_path / "toy"
    shutil.copytree(sharded, data)
    shard = data / "train" / "train-000001.tar"
    key = pd.read_parquet(shard.with_suffix(".parquet")).query("status == 'ok'")["key"].iloc[0]
    _flip_a_byte(shard, key)
    message = f"shard {shard}: the image of {key} does not match the sha256 the manifest recorded"
    with pytest.raises(InpaintbenchError, match=message):
        InpaintDataset(data, "train")  # decoded into memory at once
    lazy = InpaintDataset(data, "train", in_memory=False)
    position = lazy.keys.index(key)
    lazy.image(position - 1)  # the others read fine
    with pytest.raises(InpaintbenchError, match=message):
        lazy.image(position)
    with pytest.raises(InpaintbenchError, match=message):
        list(open_dataset(data, "train"))
    with pytest.raises(InpaintbenchError, match=message):
        _ = open_dataset(data, "train").images


def test_a_manifest_without_sha256_is_read_unchecked(sharded, tmp_path):
    import shutil

    data = tmp_path / "toy"
    shutil.copytree(sharded, data)
    manifest = pd.read_parquet(data / "manifest.parquet")
    manifest.drop(columns="sha256").to_parquet(data / "manifest.parquet")
    assert len(InpaintDataset(data, "train").images) == 21
