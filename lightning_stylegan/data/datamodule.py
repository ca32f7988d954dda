"""``ImageDataModule``: an ``ImageDataset`` behind Lightning's train and validation dataloaders.

The dataset is built in ``__init__`` (a folder or zip listing, plus a decode pass only with
``skip_corrupt``), so ``label_dim`` and ``num_images`` are known as soon as the module exists: the
CLI links ``data.label_dim`` into the model's ``c_dim`` when it instantiates them.
"""
from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, Subset

from .dataset import ImageDataset
from .images import ImageDataError
from .sampler import InfiniteSampler, StagedBatchSampler
from .workers import ignore_stop_signals

# What the networks build (lightning_stylegan.networks, generators.base): 8x8 up to 1024x1024.
RESOLUTIONS = tuple(2 ** i for i in range(3, 11))


def check_resolution(resolution: object) -> None:
    """Raise ``ImageDataError`` unless ``resolution`` is one the networks can be built for."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution not in RESOLUTIONS:
        raise ImageDataError(f"resolution {resolution!r} is not supported: the networks need a power of two from "
                             f"{RESOLUTIONS[0]} to {RESOLUTIONS[-1]}; set --data.resolution to one of "
                             f"{', '.join(map(str, RESOLUTIONS))} (every image is resized to it).")


def _check_count(name: str, value: object, least: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        kind = "a positive" if least == 1 else "a non-negative"
        raise ImageDataError(f"{name} must be {kind} integer, got {value!r}; set --data.{name} ({meaning}).")


class ImageDataModule(L.LightningDataModule):
    """Training images from a folder, a zip, or the embedded Fashion-MNIST.

    Every bad input (a missing or unusable path, no images, a bad option, a dataset smaller than a
    batch, and an image that cannot be decoded when it is read) raises ``ImageDataError``, whose
    one-line message names the file, path or ``--data.*`` option and the fix.

    Args:
        path: A folder of images (searched recursively for .png .jpg .jpeg .webp .bmp), a .zip of
            them, or None for the embedded Fashion-MNIST (6000 28x28 gray images, 10 classes).
            Labels, if used, come from dataset.json at its root.
        resolution: Every image is resized to resolution x resolution: a power of two from 8 to 1024.
        channels: Every image is converted to 1 (gray), 3 (RGB) or 4 (RGBA) channels.
        batch_size: Images per batch (per device), for training and validation; the dataset (with
            xflip copies) must hold at least one batch.
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
        val_held_out: Keep the validation images (and their mirrored copies) out of training: a
            validation split, on which the run logs the StyleGAN2-ADA paper's overfitting
            heuristic r_v (``Val/r_v``). Then the validation also scores as many training images.
        seed: Seed of the training order (an endless stream of reshuffled passes over the data).
    """

    def __init__(self, path: str | None = None, resolution: int = 32, channels: int = 1, batch_size: int = 32,
                 num_workers: int = 0, resize: str = "center-crop", skip_corrupt: bool = False,
                 use_labels: bool = False, xflip: bool = False, max_images: int | None = None,
                 val_images: int = 256, val_held_out: bool = False, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()  # checkpoints record the data, so `metrics` can find the reals
        _check_count("batch_size", batch_size, 1, "images per batch and device, e.g. 32")
        _check_count("num_workers", num_workers, 0, "DataLoader worker processes; 0 loads in the main process")
        _check_count("val_images", val_images, 0, "images the validation dataloader yields; 0 for none")
        check_resolution(resolution)
        self.path, self.batch_size, self.num_workers, self.val_images = path, batch_size, num_workers, val_images
        self.seed = seed
        self.dataset = ImageDataset(path, resolution, channels, resize=resize, skip_corrupt=skip_corrupt,
                                    use_labels=use_labels, xflip=xflip, max_images=max_images)
        self.val_count = min(val_images, self.dataset.num_images)
        self.val_held_out = bool(val_held_out) and self.val_count > 0
        self.train_set = self.dataset
        if self.val_held_out:
            n = self.dataset.num_images
            if self.val_count >= n:
                raise ImageDataError(f"--data.val_held_out keeps {self.val_count} validation images out of training, "
                                     f"but the dataset {self.dataset.source} has only {n}; lower --data.val_images.")
            self.train_set = Subset(self.dataset, [i for i in range(len(self.dataset)) if i % n >= self.val_count])
        # Checked now, before a run writes anything: batch_size is the batch size of the final resolution
        # (a growth schedule stages only its own per-resolution sizes; train_dataloader checks those).
        self._check_batch_fits(batch_size)

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
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        module = trainer.lightning_module if trainer else None
        start = getattr(module, "images_seen", 0)
        sampler = InfiniteSampler(len(self.train_set), seed=self.seed, rank=rank, world_size=world, start=start)
        growth = getattr(module, "growth", None)

        def staged_at(images_seen: int) -> int | None:
            return growth.state(images_seen / 1000).batch_size if growth is not None else None

        def batch_size_at(images_seen: int) -> int:  # a growth schedule may set it per resolution
            return staged_at(images_seen) or self.batch_size

        # Again here: the model's growth schedule may stage a larger batch size at this resolution.
        self._check_batch_fits(batch_size_at(start), staged=bool(staged_at(start)))

        return DataLoader(self.train_set, batch_sampler=StagedBatchSampler(sampler, batch_size_at),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          worker_init_fn=ignore_stop_signals)

    def _check_batch_fits(self, batch_size: int, staged: bool = False) -> None:
        """Refuse a dataset with fewer items (mirrored copies included) than one batch."""
        if len(self.train_set) >= batch_size:
            return
        count = f"{self.dataset.num_images} image(s)" + (f" ({len(self.dataset)} with xflip copies)"
                                                      if self.dataset.xflip else "")
        if self.train_set is not self.dataset:
            count += f", {len(self.train_set)} for training after --data.val_held_out"
        where = ("the growth schedule's batch size at this resolution" if staged else "--data.batch_size")
        fix = ("lower the batch_size of --model.growth_options for this resolution" if staged else
               f"lower --data.batch_size to at most {len(self.train_set)}")
        raise ImageDataError(f"The dataset {self.dataset.source} has {count}, fewer than batch_size={batch_size} "
                             f"({where}), so no full batch can be made; {fix}, or add images"
                             f"{'' if self.dataset.xflip else ' (or pass --data.xflip true to double them)'}.")

    def val_dataloader(self) -> DataLoader | list:
        """The first ``val_images`` images, in order, unshuffled; an empty list when it is 0. With
        ``val_held_out``, a second loader of as many training images (the first ones kept for training)."""
        if self.val_count == 0:
            return []
        loaders = [DataLoader(Subset(self.dataset, range(self.val_count)), batch_size=self.batch_size,
                              num_workers=self.num_workers, worker_init_fn=ignore_stop_signals)]
        if self.val_held_out:
            count = min(self.val_count, self.dataset.num_images - self.val_count)
            loaders.append(DataLoader(Subset(self.train_set, range(count)), batch_size=self.batch_size,
                                      num_workers=self.num_workers, worker_init_fn=ignore_stop_signals))
        return loaders if len(loaders) > 1 else loaders[0]
