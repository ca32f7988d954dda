"""Sample grids of a fixed latent batch from the EMA generator (PNG files and TensorBoard images),
keyed on images seen, written by rank 0 at the step ``images_seen`` that the module's scalars use
too; and PIN's rho histograms.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from ..images import image_grid, save_png, to_uint8
from ..kimg import crossed, maintenance
from ..networks import require_w_space
from ..stop_signals import received


class SampleGrid(Callback):
    """Grids of ``rows x columns`` images of fixed latents from G_ema (constant noise), written to
    ``<log_dir>/samples/fakes_<images seen>.png`` and TensorBoard ``Samples/fakes`` every
    ``every_kimg``; ``reals.png`` and ``fakes_init.png`` at the start, as NVlabs does. During
    progressive growing the images are made at the current stage and up-sampled (nearest) to the
    final resolution, so grids stay comparable over the run.
    """

    def __init__(self, every_kimg: float = 4.0, rows: int = 8, columns: int = 8, seed: int = 0,
                 truncation_psi: float = 1.0):
        self.every_kimg, self.rows, self.columns = every_kimg, rows, columns
        self.seed, self.truncation_psi = seed, truncation_psi
        self._before = self._written = 0
        self.directory: Path | None = None

    def on_train_start(self, trainer, module) -> None:
        if self.truncation_psi != 1:
            require_w_space(module.G_ema, f"samples.truncation_psi {self.truncation_psi} truncates in W; leave it 1")
        # trainer.log_dir is a collective call under DDP: every rank must ask, not just rank 0.
        self.directory = Path(trainer.log_dir or trainer.default_root_dir) / "samples"
        self._before = self._written = module.images_seen
        if not trainer.is_global_zero:
            return
        dataset = trainer.train_dataloader.dataset
        reals = torch.stack([dataset[i][0] for i in range(min(len(dataset), self.rows * self.columns))])
        _save_or_warn(image_grid(to_uint8(reals), self.columns), self.directory / "reals.png")
        if module.images_seen == 0:
            self._write(trainer, module, "fakes_init.png")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if crossed(self._before, module.images_seen, self.every_kimg):
            self._write(trainer, module, f"fakes_{module.images_seen:09d}.png")
        self._before = module.images_seen

    def on_train_end(self, trainer, module) -> None:
        if self._written != module.images_seen:
            self._write(trainer, module, f"fakes_{module.images_seen:09d}.png")

    @torch.no_grad()
    def _write(self, trainer, module, name: str) -> None:
        self._written = module.images_seen
        if not trainer.is_global_zero:
            return
        with maintenance(trainer):
            self._write_grid(trainer, module, name)

    def _write_grid(self, trainer, module, name: str) -> None:
        G = module.G_ema
        count = self.rows * self.columns
        generator = torch.Generator().manual_seed(self.seed)
        z = torch.randn(count, G.z_dim, generator=generator).to(module.device)
        c = None
        if G.c_dim:
            c = torch.eye(G.c_dim, device=module.device)[torch.arange(count) % G.c_dim]
        stage = module.stage
        chunks = []
        for zb, cb in zip(z.split(16), c.split(16) if c is not None else [None] * count):
            if received():  # a stop signal, on this rank (no collective: rank 0 writes grids alone)
                return  # the run stops to be resumed: no grid rather than a late one
            chunks.append(G(zb, cb, truncation_psi=self.truncation_psi, noise_mode="const",
                            resolution=stage.resolution, alpha=stage.alpha))
        images = F.interpolate(torch.cat(chunks), size=G.img_resolution, mode="nearest")
        grid = image_grid(to_uint8(images), self.columns)
        _save_or_warn(grid, self.directory / name)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("Samples/fakes", grid, global_step=module.images_seen)


def _save_or_warn(grid: torch.Tensor, path: Path) -> None:
    """A grid that cannot be written (a full disk) is a warning: training goes on."""
    try:
        save_png(grid, path)
    except OSError as error:
        warnings.warn(f"Could not write the sample grid {path} ({error.strerror or error}); training goes on")


def log_rho_histograms(loggers, G, step: int) -> None:
    """PIN's learned rho of every synthesis block as a TensorBoard histogram ``PIN/rho_<res>``
    (the circular-artifact paper's Figure 15); nothing for generators without PIN layers or without
    ``blocks()`` (one without a W space need not have them)."""
    writers = [logger.experiment for logger in loggers if isinstance(logger, TensorBoardLogger)]
    for block in G.synthesis.blocks() if writers and hasattr(G.synthesis, "blocks") else []:
        rhos = [m.rho.detach().flatten() for m in block.modules() if isinstance(getattr(m, "rho", None), torch.Tensor)]
        for writer in writers if rhos else []:
            writer.add_histogram(f"PIN/rho_{block.resolution}", torch.cat(rhos).cpu(), global_step=step)
