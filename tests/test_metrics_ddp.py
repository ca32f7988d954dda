"""Metrics split over processes (``metrics.shards``): the exact float64 merge of feature statistics,
the batch layout, and two real CPU processes in a gloo group (``metrics_ddp_worker.py`` and the
``metrics`` command under torchrun's variables) that return, on every rank, the values one process
computes, with a feature extractor and an LPIPS-like distance the tests build themselves."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from cli_run import free_port
from metric_plugins import TinyDistance, install_tiny_extractor
from metrics_ddp_worker import fixed_features, noisy_generator, reals
from tiny_networks import tiny_checkpoint

from lightning_stylegan.data.dataset import ImageDataset
from lightning_stylegan.metrics.catalog import parse_metrics
from lightning_stylegan.metrics.evaluate import MetricOptions, compute_metrics
from lightning_stylegan.metrics.feature_stats import FeatureStats
from lightning_stylegan.metrics.precision_recall import precision_recall, realism_score
from lightning_stylegan.metrics.shards import Shards, batch_seed
from lightning_stylegan.network_files import load_generator

REPO_TESTS = os.path.dirname(os.path.abspath(__file__))
METRICS = "fid50k_full,kid50k_full,pr50k3_full,is50k,realism1k3_full,ppl2_wend"
NUM_GEN, BATCH = 21, 4  # 6 batches: ranks 0 and 1 take 4 + 4 + 4 and 4 + 4 + 1 images


def test_merged_statistics_equal_those_of_the_concatenated_rows():
    """Parts with their own shifts, 1e6 from the origin, one of them empty: the merge equals the
    mean and (biased) covariance of all rows stacked, and the rows are concatenated in order."""
    rng = np.random.default_rng(0)
    scales = np.array([1, 2, 3, 4, 5])
    parts, rows = [], []
    for sizes, offset in (((7, 3), 1e6), ((), 0.0), ((13,), 1e6 + 50), ((1, 4), 1e6 - 20)):
        part = FeatureStats(keep_features=True)
        for size in sizes:
            batch = rng.normal(size=(size, 5)) * scales + offset
            part.append(torch.from_numpy(batch))
            rows.append(batch)
        parts.append(part)
    data = np.concatenate(rows)
    merged = FeatureStats.merge(parts, max_items=28)
    mean, cov = merged.mean_cov()
    assert merged.num_items == 28 and merged.is_full
    assert np.allclose(mean, data.mean(axis=0), rtol=0, atol=1e-9)
    assert np.allclose(cov, np.cov(data, rowvar=False, bias=True), rtol=1e-9, atol=1e-7)
    assert np.array_equal(merged.features().numpy(), data.astype(np.float32))
    assert torch.equal(merged._shift, parts[0]._shift)  # re-centred on the first part's shift
    alone = FeatureStats.merge([parts[2]])
    assert all(np.array_equal(a, b) for a, b in zip(alone.mean_cov(), parts[2].mean_cov()))
    assert not FeatureStats.merge([parts[0], FeatureStats()]).keep_features  # a part without rows


def test_batch_j_goes_to_rank_j_modulo_the_world_size_and_comes_back_in_item_order():
    """23 items in batches of 4 on 3 ranks: batches 0 and 3 on rank 0, 1 and 4 on rank 1, 2 and
    the short 5 on rank 2; with 4 ranks and 2 batches, ranks 2 and 3 get none."""
    layout = [[(j, start, stop) for j, start, stop in Shards(rank, 3).batches(23, 4)] for rank in range(3)]
    assert layout == [[(0, 0, 4), (3, 12, 16)], [(1, 4, 8), (4, 16, 20)], [(2, 8, 12), (5, 20, 23)]]
    items = torch.arange(23.0)
    per_rank = [torch.cat([items[start:stop] for _, start, stop in batches]) for batches in layout]
    assert torch.equal(Shards(0, 3).in_item_order(per_rank, 23, 4), items)
    assert [Shards(rank, 4).batches(6, 4) for rank in range(4)] == [[(0, 0, 4)], [(1, 4, 6)], [], []]
    assert torch.equal(Shards(0, 4).in_item_order([items[:4], items[4:6], None, None], 6, 4), items[:6])
    single = Shards()
    assert torch.equal(single.gather([items[:4], items[4:6]], 6, 4), items[:6])
    assert torch.equal(single.gather_batches([torch.tensor([1.0, 2]), torch.tensor([3.0, 4])], 6, 4),
                       torch.tensor([[1.0, 2], [3, 4]]))
    with pytest.raises(ValueError, match="one result per batch of rank 0"):
        single.gather([items[:4], items[4:5]], 6, 4)
    with pytest.raises(ValueError, match="rank 2 of 2"):
        Shards(2, 2)
    with pytest.raises(ValueError, match="non-negative"):
        batch_seed(-1, 0)
    assert len({batch_seed(seed, j, stream) for seed in (0, 1) for j in (0, 1) for stream in (0, 1)}) == 8


def run_ranks(command: list[str], site, world_size: int = 2, timeout: float = 180):
    """Start ``command`` once per rank with torchrun's variables (one thread each); kill all on a hang."""
    port = free_port()
    path = os.pathsep.join(filter(None, [str(site), REPO_TESTS, os.environ.get("PYTHONPATH")]))
    env = os.environ | {"PYTHONPATH": path, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                        "WORLD_SIZE": str(world_size), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(command, env=env | {"RANK": str(rank), "LOCAL_RANK": str(rank)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in range(world_size)]
    try:
        outputs = [proc.communicate(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return [subprocess.CompletedProcess(command, proc.returncode, out, err) for proc, (out, err) in zip(procs, outputs)]


def assert_close(got: dict, expected: dict, rel: float = 1e-6) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=rel, abs=1e-12), name


def test_two_gloo_processes_give_every_rank_the_single_process_values(site, tmp_path, one_thread):
    """FID, KID, PR, IS, realism and PPL of 21 images in batches of 4 (uneven shares) against 30
    uncached reals: each rank runs its own batches through the extractor, and both end with the
    values and per-image scores of one process. The single process runs on one thread as the ranks
    do: the same arithmetic, batch for batch (PPL divides by epsilon^2 = 1e-8, and a pixel rounded
    to uint8 or a neighbour in k-NN can flip on a last-bit difference, so no tolerance covers a
    different thread count). The real statistics are written once, by rank 0,
    and the next run loads them on both ranks; when one rank does not see the file, both compute."""
    install_tiny_extractor(site)
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, os.path.join(REPO_TESTS, "metrics_ddp_worker.py"), str(out), str(ckpt),
               str(tmp_path / "cache"), METRICS, str(NUM_GEN), str(BATCH), "--hide-cache-on", "1"]
    for result in run_ranks(command, site):
        assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]

    expected, per_image = compute_metrics(parse_metrics(METRICS, NUM_GEN), noisy_generator(ckpt), reals(ckpt),
                                          MetricOptions(features="tiny", batch_size=BATCH,
                                                        cache_dir=str(tmp_path / "single"), progress=False),
                                          distance=TinyDistance())
    (cache_file,) = (tmp_path / "cache").glob("*.npz")
    reals_0, reals_1 = [4, 4, 4, 4], [4, 4, 4, 2]  # 30 reals: batches 0, 2, 4, 6 and 1, 3, 5, 7
    fakes_0, fakes_1 = [4, 4, 4], [4, 4, 1]  # 21 generated images: batches 0, 2, 4 and 1, 3, 5
    for rank, (record, real_batches, fake_batches) in enumerate(zip(ranks, (reals_0, reals_1), (fakes_0, fakes_1))):
        uncached, cached, hidden = record["runs"]
        assert record["world_size"] == 2 and record["rank"] == rank
        assert uncached["batches"] == real_batches + fake_batches
        assert uncached["saved"] == ([cache_file.name] if rank == 0 else []) and uncached["loaded"] == []
        assert cached["batches"] == fake_batches
        assert cached["saved"] == [] and cached["loaded"] == [cache_file.name]
        assert hidden["batches"] == real_batches + fake_batches and hidden["loaded"] == []
        for run in record["runs"]:
            assert run["results"] == ranks[0]["runs"][0]["results"]  # every rank, every run: the same bits
            assert_close(run["results"], expected)
            assert np.allclose(run["per_image"]["realism0.021k3_full"], per_image["realism0.021k3_full"],
                               rtol=1e-6, atol=0)

    real, fake = fixed_features()  # 37 and 29 rows in blocks of 4: 10 and 8 blocks split over the ranks
    single_pr = list(precision_recall(real, fake, k=3, row_batch=4, col_batch=8))
    single_realism = realism_score(real, fake, k=3, row_batch=4, col_batch=8).tolist()
    for record in ranks:
        assert record["small_blocks"] == {"pr": single_pr, "realism": single_realism}
    assert single_pr == list(precision_recall(real, fake, k=3)) and 0 < single_pr[0] < 1


def run_command(site, world_size: int, *args) -> list[subprocess.CompletedProcess]:
    command = [sys.executable, "-m", "lightning_stylegan.cli", "metrics", *map(str, args)]
    return run_ranks(command, site, world_size)


def test_the_metrics_command_under_torchrun_variables_writes_once_what_one_process_computes(site, tmp_path,
                                                                                           one_thread):
    """``lightning-stylegan metrics`` in two processes with WORLD_SIZE=2: they join a gloo group,
    rank 0 prints the table and writes the JSON and the realism scores, rank 1 writes nothing, and
    the values equal those of one process (on one thread, as each rank)."""
    install_tiny_extractor(site)
    ckpt = tiny_checkpoint(tmp_path / "run" / "tiny.ckpt")
    names = "fid50k,kid50k,pr50k3,realism1k3"  # against the first 21 reals
    ranks = run_command(site, 2, "--ckpt", ckpt, "--data", "fashion-mnist", "--metrics", names,
                        "--num-gen", NUM_GEN, "--features", "tiny", "--batch", BATCH,
                        "--cache-dir", tmp_path / "cache", "--no-progress")
    assert [r.returncode for r in ranks] == [0, 0], ranks[0].stderr[-3000:] + ranks[1].stderr[-3000:]
    assert "METRIC" in ranks[0].stdout and ranks[1].stdout == ""
    record = json.loads((tmp_path / "run" / "tiny.ckpt.metrics.json").read_text())
    assert len(record["runs"]) == 1 and record["runs"][0]["processes"] == 2
    G = load_generator(ckpt)
    expected, per_image = compute_metrics(parse_metrics(names, NUM_GEN), G,
                                          ImageDataset("fashion-mnist", G.img_resolution, G.img_channels),
                                          MetricOptions(features="tiny", batch_size=BATCH,
                                                        cache_dir=str(tmp_path / "single"), progress=False))
    assert_close(record["results"], expected)
    scores = np.load(tmp_path / "run" / "tiny.ckpt.realism0.021k3.npy")
    assert np.allclose(scores, per_image["realism0.021k3"], rtol=1e-6, atol=0)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == \
        ["tiny.ckpt", "tiny.ckpt.metrics.json", "tiny.ckpt.realism0.021k3.npy"]
