"""Checkpoints keyed on images seen: every ``every_kimg`` thousand images and ``last.ckpt``
(also at the end of training). Every rank takes part in a save (the state is gathered from all of
them); rank 0 writes the file (``checkpoint_files.write_checksummed``: checksummed, atomic), and a
failed write stops every rank with the same error.
"""
from __future__ import annotations

import sys
from pathlib import Path

from lightning.pytorch.callbacks import Checkpoint

from ..checkpoint_files import CheckpointWriteError, snapshots, write_checksummed
from ..errors import ConfigError
from ..kimg import crossed, maintenance


class KimgCheckpoint(Checkpoint):
    """Checkpoints every ``every_kimg`` thousand images (``kimg<kimg seen>.ckpt``, e.g.
    ``kimg000010.016.ckpt`` after 10 016 images) and ``last.ckpt``
    (also at the end of training), in ``dirpath`` (default ``<default_root_dir>/checkpoints``),
    each written to a temporary file and renamed, so a crash never leaves a torn checkpoint.
    ``--ckpt_path last`` resumes from ``last.ckpt`` there (or the newest snapshot that verifies).

    Args:
        dirpath: the folder of the checkpoints (default ``<default_root_dir>/checkpoints``).
        every_kimg: thousands of images between checkpoints.
        save_every: keep a ``kimg*.ckpt`` snapshot at each one, not only ``last.ckpt``.
        keep: how many of the newest ``kimg*.ckpt`` snapshots to keep (older ones are deleted after
            each snapshot is written); None keeps them all.
    """

    def __init__(self, dirpath: str | None = None, every_kimg: float = 50.0, save_every: bool = True,
                 keep: int | None = None):
        if keep is not None and keep < 1:
            raise ConfigError(f"--checkpoints.keep must be at least 1 (or null to keep every snapshot), got {keep}")
        self.dirpath, self.every_kimg, self.save_every, self.keep = dirpath, every_kimg, save_every, keep
        self._before = 0
        self.last_saved_at: int | None = None  # images seen of the last.ckpt this run wrote last

    def directory(self, trainer) -> Path:
        return Path(self.dirpath) if self.dirpath else Path(trainer.default_root_dir) / "checkpoints"

    def last_path(self, trainer) -> Path:
        return self.directory(trainer) / "last.ckpt"

    def on_train_start(self, trainer, module) -> None:
        self._before = module.images_seen
        if trainer.is_global_zero:
            for torn in sorted(self.directory(trainer).glob("*.ckpt.tmp")):
                torn.unlink()  # a checkpoint cut off mid-write by a kill; the previous one is intact
                print(f"Removed {torn}, left by a run that stopped while writing it.", file=sys.stderr)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if crossed(self._before, module.images_seen, self.every_kimg):
            if self.save_every:
                self.save(trainer, self.directory(trainer) / f"kimg{module.images_seen / 1000:010.3f}.ckpt")
                self._prune(trainer)
            self.save_last(trainer, module)
        self._before = module.images_seen

    def on_train_end(self, trainer, module) -> None:
        self.save_last(trainer, module)

    def save_last(self, trainer, module) -> None:
        """Write ``last.ckpt`` (every rank must call this)."""
        self.save(trainer, self.last_path(trainer))
        self.last_saved_at = module.images_seen

    @staticmethod
    def save(trainer, path: Path) -> None:
        """Write a full training checkpoint atomically (every rank must call this). A failed write
        raises the same ``CheckpointWriteError`` on every rank (one raising alone would leave the
        others waiting at the next collective call)."""
        with maintenance(trainer):
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)  # what save_checkpoint does
            failure = None
            if trainer.is_global_zero:
                try:
                    write_checksummed(checkpoint, path)
                except CheckpointWriteError as error:
                    failure = (f"{error}; then resume with --ckpt_path last (the checkpoints written before are "
                               "intact; --checkpoints.dirpath puts new ones elsewhere).")
            failure = trainer.strategy.broadcast(failure, src=0)  # also the barrier after the write
            if failure is not None:
                raise CheckpointWriteError(failure)

    def _prune(self, trainer) -> None:
        """Delete the snapshots older than the ``keep`` newest (rank 0)."""
        if self.keep is not None and trainer.is_global_zero:
            for old in snapshots(self.directory(trainer))[self.keep:]:
                old.unlink()
