"""The reference side of ``train_step.py --generator stylegan3-t`` (or ``-r``): NVlabs stylegan3's
own networks, loss and training phases, timed with the same options, from a checkout of that
repository.

    git clone https://github.com/NVlabs/stylegan3 /somewhere/stylegan3
    python benchmarks/nvlabs_stylegan3_train_step.py --nvlabs-dir /somewhere/stylegan3 [--cfg stylegan3-t]
        [--device cpu] [--resolution 32] [--channel-base 4096] [--channel-max 128] [--z-dim 512]
        [--w-dim 512] [--mapping-layers 2] [--batch 8] [--steps 64] [--warmup 16] [--threads N] [--json out.json]

One training iteration is NVlabs' ``training_loop`` for ``--cfg stylegan3-*``: Gmain (no path
length, no style mixing, no G regularization interval), Dmain (the pass that updates the magnitude
EMAs), Dreg every 16 (R1 gamma 1), the non-finite gradient clean-up, Adam (D with the
lazy-regularization adjustment), and the G_ema update with buffers copied; SG3 G (R: 1x1 convs,
radial filters) and NVlabs' StyleGAN2 resnet D, fp32 (no fp16 layers), conv clamp 256, minibatch-
stddev group 4, no blur (R's blur is a D-input filter, the same cost on both sides, left out).
Inference: ``G_ema`` at constant noise. Nothing of NVlabs' code is part of this project: it is
imported from ``--nvlabs-dir`` at run time (on the CPU its CUDA ops fall back to reference code;
``torch_utils`` imports ``pkg_resources``, which recent setuptools no longer ship: pip install
"setuptools<81" or put a one-line ``pkg_resources.py`` with ``from packaging.version import parse as
parse_version`` next to it).
"""
from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import time
import warnings

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvlabs-dir", required=True)
    parser.add_argument("--cfg", default="stylegan3-t", choices=["stylegan3-t", "stylegan3-r"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channel-base", type=int, default=4096)
    parser.add_argument("--channel-max", type=int, default=128)
    parser.add_argument("--z-dim", type=int, default=512)
    parser.add_argument("--w-dim", type=int, default=512)
    parser.add_argument("--mapping-layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--infer-batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=16)
    parser.add_argument("--infer-repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json")
    args = parser.parse_args()
    sys.path.insert(0, args.nvlabs_dir)
    warnings.filterwarnings("ignore")
    from torch_utils import misc
    from training.loss import StyleGAN2Loss
    from training.networks_stylegan2 import Discriminator
    from training.networks_stylegan3 import Generator

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    res, channels = args.resolution, dict(channel_base=args.channel_base, channel_max=args.channel_max)
    radial = dict(conv_kernel=1, use_radial_filters=True) if args.cfg == "stylegan3-r" else {}
    G = Generator(z_dim=args.z_dim, c_dim=0, w_dim=args.w_dim, img_resolution=res, img_channels=3,
                  mapping_kwargs=dict(num_layers=args.mapping_layers), **channels, num_fp16_res=0, conv_clamp=256,
                  magnitude_ema_beta=0.5 ** (args.batch / 20000), **radial).to(device)
    D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, **channels, num_fp16_res=0, conv_clamp=256,
                      architecture="resnet", epilogue_kwargs=dict(mbstd_group_size=4)).to(device)
    G_ema = copy.deepcopy(G).eval()
    loss = StyleGAN2Loss(device, G, D, r1_gamma=1.0, pl_weight=0, style_mixing_prob=0)
    ratio = 16 / 17
    opt_g = torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), lr=0.002 * ratio, betas=(0.0, 0.99 ** ratio), eps=1e-8)
    phases = [("Gmain", G, opt_g, 1), ("Dmain", D, opt_d, 1), ("Dreg", D, opt_d, 16)]

    def step(batch_idx: int) -> None:
        real = torch.rand(args.batch, 3, res, res, device=device) * 2 - 1
        c = torch.zeros(args.batch, 0, device=device)
        for name, module, opt, interval in phases:
            if batch_idx % interval:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gain=interval, cur_nimg=batch_idx * args.batch,
                                      gen_z=torch.randn(args.batch, G.z_dim, device=device), gen_c=c)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        with torch.no_grad():
            beta = 0.5 ** (args.batch / 10000)
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(args.warmup):
        step(i)
    sync()
    start = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        step(i)
    sync()
    train = args.batch * args.steps / (time.perf_counter() - start)
    rss_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with torch.no_grad():
        z = torch.randn(args.infer_batch, G.z_dim, device=device)
        G_ema(z, None, noise_mode="const")
        sync()
        begin = time.perf_counter()
        for _ in range(args.infer_repeats):
            G_ema(z, None, noise_mode="const")
        sync()
        infer = args.infer_batch * args.infer_repeats / (time.perf_counter() - begin)

    result = {"train_img_per_s": round(train, 2), "sec_per_kimg": round(1000 / train, 1),
              "infer_img_per_s": round(infer, 2), "peak_rss_train_mib": round(rss_train, 1),
              "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2 ** 20, 1) if device.type == "cuda" else None,
              "config": {k: v for k, v in vars(args).items() if k != "json"}, "threads": torch.get_num_threads()}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
