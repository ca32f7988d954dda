"""NVlabs stylegan2-ada-pytorch's own training loop on the quickstart's images and settings, scored
like the quickstart: the reference side of the quickstart's FID-per-minute figures.

    python benchmarks/nvlabs_quickstart.py --nvlabs-dir CHECKOUT [--minutes 2,5,9] [--threads 2]

NVlabs' networks (skip G, residual D, z = w = 128, 2 mapping layers, channel_base 1024, max 64,
1 channel, fp32), StyleGAN2Loss (R1 gamma 0.1, path length 2, style mixing 0.9), its phases (G reg
every 4, D reg every 16, lazy Adam, lr 0.0025, betas 0 / 0.99), batch 16 and G_ema (1 kimg, ramp-up
0.05) -- the values of ``recipes/quickstart.yaml`` -- on the embedded images as this project loads
them (LANCZOS to 32x32). G_ema is copied at the given minutes of training time and scored after
training with this project's ``fid5k_full`` in the ``fashion-mnist`` features. NVlabs' code is
imported from ``--nvlabs-dir``, not part of this project.
"""
import argparse
import copy
import json
import sys
import time
import warnings

import numpy as np
import torch

from lightning_stylegan.data.dataset import ImageDataset
from lightning_stylegan.metrics.catalog import parse_metric
from lightning_stylegan.metrics.evaluate import MetricOptions, compute_metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument('--nvlabs-dir', required=True)
    p.add_argument('--minutes', default='2,5,9')
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    sys.path.insert(0, a.nvlabs_dir)
    warnings.filterwarnings('ignore')
    from torch_utils import misc  # NVlabs' code, from --nvlabs-dir
    from training.loss import StyleGAN2Loss
    from training.networks import Discriminator, Generator
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    ds = ImageDataset(None, 32, 1)
    reals = torch.stack([ds[i][0] for i in range(len(ds))])
    batch = 16
    G = Generator(z_dim=128, c_dim=0, w_dim=128, img_resolution=32, img_channels=1, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=1024, channel_max=64, num_fp16_res=0, conv_clamp=None, architecture='skip'))
    D = Discriminator(c_dim=0, img_resolution=32, img_channels=1, channel_base=1024, channel_max=64, num_fp16_res=0,
                      conv_clamp=None, architecture='resnet', epilogue_kwargs=dict(mbstd_group_size=4))
    G_ema = copy.deepcopy(G).eval()
    loss = StyleGAN2Loss(torch.device('cpu'), G.mapping, G.synthesis, D, r1_gamma=0.1, pl_weight=2, style_mixing_prob=0.9)
    phases = []
    for name, module, k in [('G', G, 4), ('D', D, 16)]:
        mb = k / (k + 1)
        opt = torch.optim.Adam(module.parameters(), lr=0.0025 * mb, betas=(0.0, 0.99 ** mb), eps=1e-8)
        phases += [dict(name=name + 'main', module=module, opt=opt, interval=1), dict(name=name + 'reg', module=module, opt=opt, interval=k)]
    marks = [float(m) * 60 for m in a.minutes.split(',')]
    snapshots = []
    train_time, nimg, batch_idx = 0.0, 0, 0
    order = torch.randperm(len(reals))
    c = torch.zeros(batch, 0)
    while marks:
        t0 = time.perf_counter()
        idx = order[(batch_idx * batch) % len(reals):][:batch]
        if len(idx) < batch:
            order = torch.randperm(len(reals)); idx = order[:batch]
        real = reals[idx]
        for ph in phases:
            if batch_idx % ph['interval'] != 0:
                continue
            ph['opt'].zero_grad(set_to_none=True); ph['module'].requires_grad_(True)
            loss.accumulate_gradients(phase=ph['name'], real_img=real, real_c=c, gen_z=torch.randn(batch, 128), gen_c=c, sync=True, gain=ph['interval'])
            ph['module'].requires_grad_(False)
            for param in ph['module'].parameters():
                if param.grad is not None:
                    misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            ph['opt'].step()
        with torch.no_grad():
            ema_nimg = min(1000, nimg * 0.05)
            beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
            for pe, pp in zip(G_ema.parameters(), G.parameters()):
                pe.copy_(pp.lerp(pe, beta))
            for be, bb in zip(G_ema.buffers(), G.buffers()):
                be.copy_(bb)
        nimg += batch; batch_idx += 1
        train_time += time.perf_counter() - t0
        if train_time >= marks[0]:
            snapshots.append((round(marks.pop(0) / 60, 3), nimg / 1000, copy.deepcopy(G_ema)))
            print(f'snapshot at {snapshots[-1][0]} min: {nimg / 1000:.1f} kimg', flush=True)
    spec = [parse_metric('fid5k_full')]
    rows = []
    for minutes, kimg, g in snapshots:
        res, _ = compute_metrics(spec, g, ds, MetricOptions(features='fashion-mnist', progress=False))
        rows.append(dict(minutes=minutes, kimg=round(kimg, 2), fid5k_full=round(res['fid5k_full'], 2)))
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
