"""Training and inference throughput of the StyleGAN2 configuration on this machine.

Training: real ``Trainer`` steps (on ``--accelerator cpu`` or ``cuda``) of ``StyleGAN2`` (G main + D main every step, path length every 4
G steps, R1 every 16 D steps, style mixing, EMA), timed after warm-up, in images per second, at
``--precision`` (``32-true`` or ``bf16-mixed``). Inference: ``G_ema(z)`` with constant noise, no
grad, in images per second with the fused (grouped) and the non-fused modulated conv. Peak RSS
(``ru_maxrss``) after training and at the end, peak GPU memory on CUDA, and the last R1 and
path-length penalties (finite and sane in bf16 too).

    python benchmarks/train_step.py [--resolution 32] [--channel-base 4096] [--channel-max 128]
        [--z-dim 512] [--w-dim 512] [--mapping-layers 8] [--batch 8] [--infer-batch 32]
        [--steps 64] [--precision 32-true] [--accelerator cpu] [--threads N] [--json out.json]
        [--augment ada --augment-p 0.6] [--generator stylegan3-t]

``--generator stylegan3-t`` / ``stylegan3-r`` (needs ``pip install ./plugins/stylegan3``) times
NVlabs' ``--cfg stylegan3-*`` step instead: no noise, no path length, no style mixing, conv clamp
256, magnitude EMAs (``--mapping-layers 2`` is that config's); the reference side is
``nvlabs_stylegan3_train_step.py``.

``--augment`` applies an augmentation plugin at a fixed p to every D input: the step time with and
without it gives the augmentation's share of a training step.

Defaults: the comparison configuration of issue 13 (32x32, channel_base 4096, channel_max 128,
z = w = 512, 8 mapping layers, demod + skip G + residual D). Compare with NVlabs' code only side
by side, in one run on one machine (the session notes give both figures).
"""
from __future__ import annotations

import argparse
import json
import resource
import time
import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_stylegan.training.module import StyleGAN2
from lightning_stylegan.training.preemption import Preemption
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions
from lightning_stylegan.training.regularizers import PathLength, R1


class StepTimer(pl.Callback):
    """Images per second after ``warmup`` steps, and the latest regularizer values seen."""

    REGULARIZERS = ("Loss/r1_penalty", "Loss/pl_penalty")

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.images = warmup, None, None, 0
        self.regularizers: dict[str, float] = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        for name in self.REGULARIZERS:
            if module._stats.get(name):
                self.regularizers[name] = float(module._stats[name][-1])
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if batch_idx == self.warmup - 1:
            self.start = time.perf_counter()
        elif batch_idx >= self.warmup:
            self.images += batch[0].shape[0]
            self.end = time.perf_counter()

    def images_per_second(self) -> float:
        return self.images / (self.end - self.start)


def train_throughput(model: StyleGAN2, args, stylegan3: bool) -> StepTimer:
    # A multiple of the R1 and path-length intervals, so the lazy passes occur at their share.
    steps = args.warmup + args.steps
    images = torch.rand(args.batch * steps, args.channels, args.resolution, args.resolution) * 2 - 1
    loader = DataLoader(TensorDataset(images, torch.zeros(len(images), 0)), batch_size=args.batch)
    timer = StepTimer(args.warmup)
    trainer = pl.Trainer(accelerator=args.accelerator, devices=1, max_steps=-1, max_epochs=1, logger=False,
                         precision=args.precision,
                         enable_checkpointing=True, enable_progress_bar=False, enable_model_summary=False,
                         # every fit polls for a stop signal at the end of each step (a Checkpoint callback)
                         callbacks=[R1(gamma=1.0, interval=16), timer, Preemption()] +
                         ([] if stylegan3 else [PathLength(interval=4)]),
                         log_every_n_steps=10 ** 9)
    trainer.fit(model, loader)
    return timer


@torch.no_grad()
def infer_throughput(G, batch: int, repeats: int, fused_modconv: bool, precision: str) -> float:
    device = next(G.parameters()).device
    z = torch.randn(batch, G.z_dim, device=device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision.startswith("bf16")):
        G(z, noise_mode="const", fused_modconv=fused_modconv)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            G(z, noise_mode="const", fused_modconv=fused_modconv)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - start)


def peak_rss_mib() -> float:
    """The process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--channel-base", type=int, default=4096)
    parser.add_argument("--channel-max", type=int, default=128)
    parser.add_argument("--z-dim", type=int, default=512)
    parser.add_argument("--w-dim", type=int, default=512)
    parser.add_argument("--mapping-layers", type=int, default=8)
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--generator", default="skip", help="generator plugin: skip (StyleGAN2 config E) or "
                        "stylegan3-t / stylegan3-r (NVlabs' --cfg stylegan3-*)")
    parser.add_argument("--augment", default="none", help="augmentation plugin on every D input (ada, diffaugment)")
    parser.add_argument("--augment-p", type=float, default=0.6, help="its fixed p (with --augment)")
    parser.add_argument("--infer-batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64, help="timed training steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=16)
    parser.add_argument("--infer-repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    stylegan3 = args.generator.startswith("stylegan3")
    generator = dict(topology=args.generator, use_noise=False, conv_clamp=256) if stylegan3 else {}
    model = StyleGAN2(
        resolution=args.resolution, channels=args.channels, style_mixing_prob=0.0 if stylegan3 else 0.9,
        generator=GeneratorOptions(z_dim=args.z_dim, w_dim=args.w_dim, mapping_layers=args.mapping_layers,
                                   channel_base=args.channel_base, channel_max=args.channel_max, **generator),
        discriminator=DiscriminatorOptions(channel_base=args.channel_base, channel_max=args.channel_max,
                                           conv_clamp=256 if stylegan3 else None),
        augment=args.augment, augment_options={"p": args.augment_p} if args.augment != "none" else None)
    timer = train_throughput(model, args, stylegan3)
    train = timer.images_per_second()
    rss_train = peak_rss_mib()
    infer = {fused: infer_throughput(model.G_ema, args.infer_batch, args.infer_repeats, fused, args.precision)
             for fused in (True, False)}
    result = {
        "train_img_per_s": round(train, 2),
        "infer_fused_img_per_s": round(infer[True], 2), "infer_unfused_img_per_s": round(infer[False], 2),
        "sec_per_kimg": round(1000 / train, 1),
        "peak_rss_train_mib": rss_train, "peak_rss_mib": peak_rss_mib(),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2 ** 20, 1) if torch.cuda.is_available() else None,
        "last_regularizers": timer.regularizers,
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
