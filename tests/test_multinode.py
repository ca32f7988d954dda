"""More than one machine, simulated on this one: two "nodes" of one CPU process each (gloo), placed
by the environment variables a cluster launcher sets and Lightning reads (SLURM's ``srun``,
``torchrun``), each with its own output folder as if the nodes shared no disk. Then the run resumes
on a different world size (one process, the same global batch) and continues the data stream
exactly."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from lightning_stylegan.data.datamodule import ImageDataModule
from lightning_stylegan.data.sampler import InfiniteSampler

from cli_run import BATCH, REPO, TINY, cli, cli_processes, free_port

NODES = 2
STEPS = 5  # of NODES x BATCH images
KIMG = STEPS * NODES * BATCH / 1000
# Variables of a real launcher in the test's own environment would place the processes otherwise.
LAUNCHER_VARIABLES = ("SLURM_", "TORCHELASTIC_", "GROUP_", "LOCAL_", "NODE_RANK", "RANK", "WORLD_SIZE",
                      "MASTER_", "ROLE_")


def clean_environment() -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(LAUNCHER_VARIABLES)}
    paths = [str(REPO / "tests"), env.get("PYTHONPATH")]
    return env | {"PYTHONPATH": os.pathsep.join(filter(None, paths)), "OMP_NUM_THREADS": "1"}


def slurm_variables(node: int, port: int, nodes: int = NODES) -> dict:
    """What ``srun`` sets for task ``node`` of ``sbatch --nodes 2 --ntasks-per-node 1`` (Lightning's
    SLURMEnvironment reads the task ids; MASTER_PORT overrides the port it derives from the job id)."""
    return {"SLURM_NTASKS": str(nodes), "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": str(nodes),
            "SLURM_PROCID": str(node), "SLURM_LOCALID": "0", "SLURM_NODEID": str(node),
            "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "stylegan", "SLURM_NODELIST": "127.0.0.1",
            "MASTER_PORT": str(port)}


def torchrun_variables(node: int, port: int) -> dict:
    """What ``torchrun --nnodes 2 --nproc_per_node 1 --node_rank <node>`` sets for its one worker."""
    return {"TORCHELASTIC_RUN_ID": "stylegan", "RANK": str(node), "WORLD_SIZE": str(NODES), "LOCAL_RANK": "0",
            "LOCAL_WORLD_SIZE": "1", "GROUP_RANK": str(node), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def probe_config(folder: Path, out_dir: Path) -> Path:
    path = folder / f"probe-{out_dir.name}.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": [
        {"class_path": "cluster_probe.ClusterProbe", "init_args": {"out_dir": str(out_dir)}}]}}))
    return path


def train_on_two_nodes(tmp_path: Path, variables) -> tuple[list[dict], list[Path]]:
    """Run a fit of STEPS steps as NODES processes; their probe records and output folders."""
    probe, port = tmp_path / "probe", free_port()
    roots = [tmp_path / f"node{node}" for node in range(NODES)]
    config = probe_config(tmp_path, probe)
    runs = [(["fit", *TINY, "--config", config, "--model.total_kimg", KIMG, "--trainer.default_root_dir", root,
              "--trainer.num_nodes", NODES, "--trainer.devices", 1, "--trainer.accelerator", "cpu",
              "--trainer.strategy", "ddp"],
             clean_environment() | variables(node, port)) for node, root in enumerate(roots)]
    results = cli_processes(runs, timeout=300, stall=90, watch=tmp_path)
    for node, result in enumerate(results):
        assert result.returncode == 0, f"node {node}:\n{result.stderr[-3000:]}"
    return [json.loads((probe / f"rank{rank}.json").read_text()) for rank in range(NODES)], roots


def written_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stream_sums(start: int, count: int, world_size: int, rank: int, batch: int) -> list[float]:
    """The float64 sum of each batch rank ``rank`` of ``world_size`` draws from the training stream
    from global position ``start`` on (the data module's images, in the sampler's order)."""
    data = ImageDataModule(path=None, resolution=8, channels=1, batch_size=batch, max_images=64, val_images=8)
    order = iter(InfiniteSampler(len(data.train_set), seed=data.seed, rank=rank, world_size=world_size, start=start))
    return [float(sum(data.train_set[next(order)][0].double().sum() for _ in range(batch))) for _ in range(count)]


def test_two_slurm_nodes_train_as_one_run_and_resume_on_one_process(tmp_path):
    ranks, roots = train_on_two_nodes(tmp_path, slurm_variables)

    # Lightning read the SLURM task ids: world size 2, one process per node, node rank = global rank.
    assert [(r["environment"], r["world_size"], r["num_nodes"], r["global_rank"], r["node_rank"], r["local_rank"])
            for r in ranks] == [("SLURMEnvironment", NODES, NODES, node, node, 0) for node in range(NODES)]
    # One run: the counters count both nodes' images, the networks are identical on both nodes.
    expected = {"images_seen": STEPS * NODES * BATCH, "g_steps": STEPS, "d_steps": STEPS, "g_reg_steps": 2,
                "d_reg_steps": 1}
    assert ranks[0]["counters"] == ranks[1]["counters"] == expected
    assert ranks[0]["params"] == ranks[1]["params"]
    # Each node took its share of the one data stream: rank r, positions r, r + 2, ... of each step.
    for rank in range(NODES):
        assert ranks[rank]["batch_sizes"] == [BATCH] * STEPS
        assert ranks[rank]["batch_sums"] == pytest.approx(stream_sums(0, STEPS, NODES, rank, BATCH), rel=1e-12)

    # Only global rank 0 writes: checkpoints, logs, sample grids and the config are on node 0's disk.
    # Under SLURM, Lightning names the log version after the job id (a requeued job logs on in it).
    node0, node1 = (written_files(root) for root in roots)
    logs = "lightning_logs/version_4242"
    assert "checkpoints/last.ckpt" in node0 and f"{logs}/config.yaml" in node0
    assert any(name.startswith(f"{logs}/events.out.tfevents") for name in node0)
    assert any(name.startswith(f"{logs}/samples/fakes_") for name in node0)
    assert node1 == []

    # Resume node 0's checkpoint on one process with the same global batch (8 = 2 x 4).
    probe = tmp_path / "probe-resumed"
    resumed = cli("fit", *TINY, "--config", probe_config(tmp_path, probe), "--model.total_kimg", 2 * KIMG,
                  "--data.batch_size", NODES * BATCH, "--trainer.default_root_dir", roots[0],
                  "--ckpt_path", roots[0] / "checkpoints" / "last.ckpt", env=clean_environment(),
                  timeout=300, stall=90, watch=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "data.batch_size 4 -> 8" in resumed.stderr
    record = json.loads((probe / "rank0.json").read_text())
    assert record["world_size"] == 1
    # The images seen stay exact, and the data stream goes on where both nodes left it: each batch of
    # 8 holds the images the two nodes' batches of 4 would have held at that step.
    assert record["counters"]["images_seen"] == 2 * STEPS * NODES * BATCH
    assert record["counters"]["g_steps"] == 2 * STEPS
    uninterrupted = [sum(sums) for sums in zip(*(stream_sums(STEPS * NODES * BATCH, STEPS, NODES, rank, BATCH)
                                                 for rank in range(NODES)))]
    assert record["batch_sums"] == pytest.approx(uninterrupted, rel=1e-12)
    assert torch.load(roots[0] / "checkpoints" / "last.ckpt", weights_only=True)["counters"] == record["counters"]


def test_two_torchrun_nodes_place_their_ranks_as_torchrun_says(tmp_path):
    ranks, roots = train_on_two_nodes(tmp_path, torchrun_variables)
    assert [(r["environment"], r["world_size"], r["global_rank"], r["node_rank"]) for r in ranks] == \
        [("TorchElasticEnvironment", NODES, node, node) for node in range(NODES)]
    assert ranks[0]["counters"] == ranks[1]["counters"] and ranks[0]["counters"]["images_seen"] == STEPS * NODES * BATCH
    assert ranks[0]["params"] == ranks[1]["params"]
    assert written_files(roots[1]) == []


def test_an_older_versions_slurm_requeue_checkpoint_is_never_resumed_implicitly(tmp_path):
    """Lightning resumes a fit without --ckpt_path under SLURM from its newest ``hpc_ckpt_<n>.ckpt``
    (saved mid-step by its auto-requeue in older versions); the CLI stops and says what to choose,
    and ``--ckpt_path last`` resumes last.ckpt exactly, ignoring it."""
    env = clean_environment() | slurm_variables(0, free_port(), nodes=1)
    root = tmp_path / "run"
    first = cli("fit", *TINY, "--model.total_kimg", KIMG, "--trainer.default_root_dir", root, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not list(root.rglob("hpc_ckpt_*"))  # this version writes none
    stale = root / "hpc_ckpt_1.ckpt"
    stale.write_bytes(b"saved mid-step by an older version")
    before = sorted(p.name for p in root.rglob("*"))
    refused = cli("fit", *TINY, "--model.total_kimg", 2 * KIMG, "--trainer.default_root_dir", root, env=env)
    assert refused.returncode == 2, refused.stderr[-3000:]
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert str(stale) in line and "--ckpt_path last" in line and "Traceback" not in refused.stderr
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing built, trained or written

    resumed = cli("fit", *TINY, "--model.total_kimg", 2 * KIMG, "--trainer.default_root_dir", root,
                  "--ckpt_path", "last", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["counters"]["images_seen"] == \
        2 * STEPS * NODES * BATCH
