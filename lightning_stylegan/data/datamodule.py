"""``ImageDataModule``: an ``ImageDataset`` behind Lightning's train and validation dataloaders.

The dataset is built in ``__init__`` (a folder or zip listing, plus a decode pass only with
``skip_corrupt``), so ``label_dim`` and ``num_images`` are known as soon as the module exists: the
CLI links ``data.label_dim`` into the model's ``c_dim`` when it instantiates them.
"""
from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, Subset

from .dataset import ImageDataset
from .sampler import InfiniteSampler, StagedBatchSampler


class ImageDataModule(L.LightningDataModule):
    """Training images from a folder, a zip, or the embedded Fashion-MNIST.

    Args:
        path: A folder of images (searched recursively for .png .jpg .jpeg .webp .bmp), a .zip of
            them, or None for the embedded Fashion-MNIST (6000 28x28 gray images, 10 classes).
            Labels, if used, come from dataset.json at its root.
        resolution: Every image is resized to resolution x resolution.
        channels: Every image is converted to 1 (gray), 3 (RGB) or 4 (RGBA) channels.
        batch_size: Images per batch (per device), for training and validation.
        num_workers: DataLoader worker processes (0 = load in the main process).
        resize: How a non-square image becomes square before resizing: 'center-crop' (the largest
            centered square) or 'pad' (black borders, centered).
        skip_corrupt: Decode every image once at start-up and leave out the unreadable ones (with a
            warning), instead of stopping at the first one.
        use_labels: Condition on class labels from dataset.json (one-hot, label_dim = largest
            class + 1); every image must have a label.
        xflip: Add a left-right mirrored copy of every image (doubles the dataset).
        max_images: Use only the first this many images (sorted by path); None = all.
        val_images: How many images (the first ones, in order, never mirrored) the validation
            dataloader yields; 0 = no validation data.
        seed: Seed of the training order (an endless stream of reshuffled passes over the data).
    """

    def __init__(self, path: str | None = None, resolution: int = 32, channels: int = 1, batch_size: int = 32,
                 num_workers: int = 0, resize: str = "center-crop", skip_corrupt: bool = False,
                 use_labels: bool = False, xflip: bool = False, max_images: int | None = None,
                 val_images: int = 256, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()  # checkpoints record the data, so `metrics` can find the reals
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
        if isinstance(val_images, bool) or not isinstance(val_images, int) or val_images < 0:
            raise ValueError(f"val_images must be a non-negative integer, got {val_images!r}")
        self.path, self.batch_size, self.num_workers, self.val_images = path, batch_size, num_workers, val_images
        self.seed = seed
        self.dataset = ImageDataset(path, resolution, channels, resize=resize, skip_corrupt=skip_corrupt,
                                    use_labels=use_labels, xflip=xflip, max_images=max_images)

    @property
    def label_dim(self) -> int:
        """Size of the one-hot labels (0 without ``use_labels``): the model's ``c_dim``."""
        return self.dataset.label_dim

    @property
    def num_images(self) -> int:
        """Distinct training images (mirrored copies from ``xflip`` not counted)."""
        return self.dataset.num_images

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.dataset.image_shape

    def train_dataloader(self) -> DataLoader:
        """An endless stream of batches (``InfiniteSampler``), this rank's share of it, resumed at
        the images the attached model has already seen; training length is set by the model. A
        growth schedule of the model may set the batch size per resolution (``StagedBatchSampler``)."""
        if len(self.dataset) < self.batch_size:
            raise ValueError(f"The dataset {self.dataset.source} has {len(self.dataset)} images (with xflip "
                             f"copies), fewer than batch_size={self.batch_size}, so no full batch can be "
                             "made; lower --data.batch_size or add images.")
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        module = trainer.lightning_module if trainer else None
        start = getattr(module, "images_seen", 0)
        sampler = InfiniteSampler(len(self.dataset), seed=self.seed, rank=rank, world_size=world, start=start)
        growth = getattr(module, "growth", None)

        def batch_size_at(images_seen: int) -> int:  # a growth schedule may set it per resolution
            staged = growth.state(images_seen / 1000).batch_size if growth is not None else None
            return staged or self.batch_size

        return DataLoader(self.dataset, batch_sampler=StagedBatchSampler(sampler, batch_size_at),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader | list:
        """The first ``val_images`` images, in order, unshuffled; an empty list when it is 0."""
        if self.val_images == 0:
            return []
        count = min(self.val_images, self.dataset.num_images)
        return DataLoader(Subset(self.dataset, range(count)), batch_size=self.batch_size,
                          num_workers=self.num_workers)
