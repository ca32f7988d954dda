"""Quality metrics during training: the EMA generator scored every ``every_kimg`` thousand images.

Values go to TensorBoard as ``Metrics/<name>`` at step = images seen (the step of every other
scalar) and into ``trainer.callback_metrics``, so a ``ModelCheckpoint(monitor="Metrics/fid50k_full",
mode="min", save_top_k=1, every_n_train_steps=1)`` keeps the checkpoint with the best FID (it saves
only when the monitored value improves). Under DDP every rank computes its share of the images
(``Shards.from_process_group``: the batches split over the ranks, the statistics merged exactly)
and ends with the same values; rank 0 logs them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn

from ..data.dataset import ImageDataset
from ..errors import ConfigError
from ..kimg import crossed, maintenance
from ..training.preemption import poll_function
from .catalog import parse_metrics
from .evaluate import MetricOptions, check_metrics, compute_metrics
from .shards import Shards


class StageSynthesis(nn.Module):
    """``G.synthesis`` at a progressive-growing stage, up-sampled (nearest) to the final resolution,
    as the sample grids are."""

    def __init__(self, synthesis: nn.Module, resolution: int, alpha: float, final_resolution: int):
        super().__init__()
        self.synthesis, self.resolution, self.alpha = synthesis, resolution, alpha
        self.final_resolution = final_resolution
        self.num_ws = synthesis.num_ws

    def forward(self, ws, **kwargs):
        images = self.synthesis(ws, resolution=self.resolution, alpha=self.alpha, **kwargs)
        return F.interpolate(images, size=self.final_resolution, mode="nearest")


class StageGenerator(nn.Module):
    """A generator at a progressive-growing stage, with G's interface (mapping, synthesis, sizes)."""

    def __init__(self, G: nn.Module, resolution: int, alpha: float):
        super().__init__()
        self.mapping = G.mapping
        self.synthesis = StageSynthesis(G.synthesis, resolution, alpha, G.img_resolution)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = G.z_dim, G.c_dim, G.w_dim, G.num_ws
        self.img_resolution, self.img_channels = G.img_resolution, G.img_channels

    def forward(self, z, c=None, truncation_psi: float = 1, truncation_cutoff: int | None = None, **kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **kwargs)


class Metrics(Callback):
    """Compute ``metrics`` (names as in ``metrics.catalog``, e.g. ``[fid50k_full, pr50k3_full]``)
    every ``every_kimg`` and at the end of training; an empty list turns it off.

    Args:
        metrics: metric names; ``num_gen`` replaces their sample counts (``fid50k_full`` -> ``fid1k_full``).
        every_kimg: how often, in thousands of real images shown.
        num_gen: generated images per metric (None: the count in each name).
        features: feature extractor plugin, ``auto`` = Inception (FID/KID/IS) and VGG16 (PR), as NVlabs.
        feature_weights: local weights file of the feature extractor (offline machines); with
            ``auto``, Inception's, or ``name=path`` pairs (``inception=A.pth,vgg16=B.pth``).
        lpips_backbone: local weights of the LPIPS backbone for PPL.
        batch_size: generated images per batch.
        cache_dir: where real-image statistics are cached (default ``~/.cache/lightning_stylegan``).
        reals: the real images to compare with: ``training`` (the training set, as NVlabs' training
            loop) or ``all`` (the dataset without ``--data.max_images``, as the StyleGAN2-ADA paper
            scores its subset runs: against the whole dataset).
    """

    def __init__(self, metrics: list[str] | None = None, every_kimg: float = 50.0, num_gen: int | None = None,
                 features: str = "auto", feature_weights: str | None = None, lpips_backbone: str | None = None,
                 batch_size: int = 32, cache_dir: str | None = None, reals: str = "training"):
        if reals not in ("training", "all"):
            raise ConfigError(f"--metrics.reals must be 'training' or 'all', got {reals!r}")
        self.reals, self._all_reals = reals, None
        self.specs = parse_metrics(metrics, num_gen) if metrics else []
        self.every_kimg = every_kimg
        self.options = MetricOptions(features=features, feature_weights=feature_weights,
                                     lpips_backbone=lpips_backbone, batch_size=batch_size,
                                     cache_dir=cache_dir, progress=False)
        self._before = 0
        self._scored = -1

    def on_fit_start(self, trainer, module) -> None:
        check_metrics(self.specs, module.G_ema)  # e.g. PPL in W of a generator without W: before training

    def on_train_start(self, trainer, module) -> None:
        self._before = module.images_seen

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.specs and crossed(self._before, module.images_seen, self.every_kimg):
            self.score(trainer, module)
        self._before = module.images_seen

    def on_train_end(self, trainer, module) -> None:
        if self.specs and self._scored != module.images_seen:
            self.score(trainer, module)

    def real_dataset(self, datamodule) -> ImageDataset:
        """The training set, or with ``reals: all`` the same images without ``max_images``."""
        data = datamodule.hparams
        if self.reals == "training" or data.get("max_images") is None:
            return datamodule.dataset
        if self._all_reals is None:
            self._all_reals = ImageDataset(data["path"], data["resolution"], data["channels"], resize=data["resize"],
                                           skip_corrupt=data["skip_corrupt"], use_labels=data["use_labels"],
                                           xflip=data["xflip"])
        return self._all_reals

    @torch.no_grad()
    def score(self, trainer, module) -> dict[str, float]:
        """Compute the metrics now with G_ema, each rank its share (the same values on every rank);
        rank 0 logs them."""
        self._scored = module.images_seen
        with maintenance(trainer):
            stage = module.stage
            G = module.G_ema
            if stage.resolution != G.img_resolution:
                G = StageGenerator(G, stage.resolution, stage.alpha)
            self.options.device = str(module.device)
            poll = poll_function(trainer)  # a stop signal abandons the metric between rounds
            shards = Shards.from_process_group(poll=poll) if trainer.world_size > 1 else Shards(poll=poll)
            results, _ = compute_metrics(self.specs, G, self.real_dataset(trainer.datamodule), self.options,
                                         shards=shards)
        scalars = {f"Metrics/{name}": value for name, value in results.items()}
        for name, value in scalars.items():
            trainer.callback_metrics[name] = torch.tensor(value)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(scalars, step=module.images_seen)
        return results
