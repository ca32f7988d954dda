"""Training and inference throughput of the StyleGAN2 configuration on this machine.

Training: real ``Trainer`` steps of ``StyleGAN2`` (G main + D main every step, path length every 4
G steps, R1 every 16 D steps, style mixing, EMA), timed after warm-up, in images per second.
Inference: ``G_ema(z)`` with constant noise, no grad, in images per second.

    python benchmarks/train_step.py [--resolution 32] [--channel-base 4096] [--channel-max 128]
        [--batch 8] [--infer-batch 32] [--steps 64] [--json out.json]

Defaults: the comparison configuration (32x32, channel_base 4096, channel_max 128, z = w = 512,
8 mapping layers, demod + skip G + residual D). NVlabs' stylegan2-ada-pytorch measured on the same
machine type: about 10.8 img/s training and 67 img/s inference.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_stylegan.training.module import StyleGAN2
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions
from lightning_stylegan.training.regularizers import PathLength, R1


class StepTimer(pl.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.images = warmup, None, 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx == self.warmup - 1:
            self.start = time.perf_counter()
        elif batch_idx >= self.warmup:
            self.images += batch[0].shape[0]

    def images_per_second(self) -> float:
        return self.images / (time.perf_counter() - self.start)


def train_throughput(model: StyleGAN2, args) -> float:
    # A multiple of the R1 and path-length intervals, so the lazy passes occur at their share.
    steps = args.warmup + args.steps
    images = torch.rand(args.batch * steps, args.channels, args.resolution, args.resolution) * 2 - 1
    loader = DataLoader(TensorDataset(images, torch.zeros(len(images), 0)), batch_size=args.batch)
    timer = StepTimer(args.warmup)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=-1, max_epochs=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[R1(gamma=1.0, interval=16), PathLength(interval=4), timer],
                         log_every_n_steps=10 ** 9)
    trainer.fit(model, loader)
    return timer.images_per_second()


@torch.no_grad()
def infer_throughput(G, batch: int, repeats: int) -> float:
    z = torch.randn(batch, G.z_dim)
    G(z, noise_mode="const")  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        G(z, noise_mode="const")
    return batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--channel-base", type=int, default=4096)
    parser.add_argument("--channel-max", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
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
    model = StyleGAN2(
        resolution=args.resolution, channels=args.channels,
        generator=GeneratorOptions(channel_base=args.channel_base, channel_max=args.channel_max),
        discriminator=DiscriminatorOptions(channel_base=args.channel_base, channel_max=args.channel_max))
    result = {
        "train_img_per_s": round(train_throughput(model, args), 2),
        "infer_img_per_s": round(infer_throughput(model.G_ema, args.infer_batch, args.infer_repeats), 2),
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
