"""What a run shows while it trains: a progress bar counted in kimg, and NVlabs' tick lines.

``KimgProgressBar`` replaces Lightning's training bar (an endless data stream makes that one read
``Epoch 0: 929/?``) with one that counts thousands of images toward ``model.total_kimg``::

    train  12.3/25.0 kimg |####      | [01:02<01:05,  5.10s/kimg, G=0.712, D=1.234]

``Ticks`` prints, every ``kimg`` thousand images, the status line of NVlabs' StyleGAN2-ADA training
loop (``training/training_loop.py``, ``kimg_per_tick``) and appends the same figures to
``stats.jsonl``. The fields, as NVlabs defines them:

* ``tick``: ticks printed by this process, from 0; ``kimg``: thousands of images seen in the run.
* ``time``: wall time since this process started fitting.
* ``sec/tick``: wall time of the tick less its maintenance; ``sec/kimg``: that over the kimg of
  the tick (so both count training only).
* ``maintenance``: seconds spent since the previous tick in ``kimg.maintenance(trainer)`` blocks
  (sample grids, checkpoints, metrics), which NVlabs runs between ticks.
* ``cpumem``: resident memory of the process (GiB); ``gpumem`` / ``reserved``: peak CUDA memory
  allocated / reserved by the caching allocator during the tick (GiB; StyleGAN3 added
  ``reserved``); ``augment``: the augmentation probability, for modules with an ``augment_p``.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm, convert_inf

from ..kimg import crossed, maintenance_seconds

LOSSES = {"loss_G": "G", "loss_D": "D"}  # the losses the module logs to the bar, and their short names


class KimgProgressBar(TQDMProgressBar):
    """Lightning's tqdm bars, with the training bar counting kimg toward ``total_kimg`` and the
    validation bar drawn as seldom as the training bar.

    Both go to stderr (tick lines and ``fit > log.txt`` stay clean on stdout). A resumed run starts
    the training bar at the checkpoint's kimg, and its rate and ETA count only the progress made
    since. The validation bar (at the end of ``fit``, and in ``validate``) counts batches; it opens
    on a line of its own below the training bar's last state and stays when it closes. Lightning's
    own bar redraws at every batch, which in a log is one line per batch.

    Args:
        mininterval: least seconds between redraws of a bar; None = 0.5 on a terminal and 30
            otherwise (a CI or batch-job log gets a line every 30 s, not every step).
    """

    TRAIN_FORMAT = "{desc}  {n:.1f}/{total:.1f} kimg |{bar}| [{elapsed}<{remaining}, {rate_inv_fmt}{postfix}]"
    VALIDATION_FORMAT = "{desc}  {n}/{total} batches |{bar}| [{elapsed}<{remaining}]"

    def __init__(self, mininterval: float | None = None):
        super().__init__()
        self.mininterval = mininterval

    def _bar(self, **kwargs) -> Tqdm:
        file = sys.stderr
        interval = self.mininterval if self.mininterval is not None else 0.5 if file.isatty() else 30.0
        return Tqdm(position=2 * self.process_position, disable=self.is_disabled, leave=True, dynamic_ncols=True,
                    file=file, mininterval=interval, **kwargs)

    def init_train_tqdm(self) -> Tqdm:
        module = self.trainer.lightning_module
        return self._bar(desc="train", initial=module.kimg, total=module.hparams["total_kimg"], unit="kimg",
                         smoothing=0.1, bar_format=self.TRAIN_FORMAT)

    def init_validation_tqdm(self) -> Tqdm:
        return self._bar(desc="validate", total=convert_inf(self.total_val_batches), smoothing=0,
                         bar_format=self.VALIDATION_FORMAT)

    def on_train_epoch_start(self, *_) -> None:
        pass  # epochs of the endless data stream mean nothing: one bar for the whole run

    def on_train_epoch_end(self, *_) -> None:
        pass

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        bar = self.train_progress_bar
        if not bar.disable:
            bar.set_postfix(self.get_metrics(trainer, module), refresh=False)
            # The last batch may pass total_kimg; tqdm warns about a bar past its end.
            bar.update(min(module.kimg, bar.total) - bar.n)  # redraws at most every mininterval seconds

    # Lightning's bar for the sanity check (num_sanity_val_steps), ours for validation.
    def on_validation_start(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return super().on_validation_start(trainer, module)
        train = self._train_progress_bar
        if train is not None and not train.disable and trainer.state.fn == "fit":
            train.refresh()  # its latest state, kept on its line above the validation bar
            train.fp.write("\n")
        self.val_progress_bar = self.init_validation_tqdm()

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
        # Lightning's resets the bar for each validation loader; ours counts all their batches.
        if trainer.sanity_checking:
            super().on_validation_batch_start(trainer, module, batch, batch_idx, dataloader_idx)

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking:
            return super().on_validation_batch_end(trainer, module, outputs, batch, batch_idx, dataloader_idx)
        self.val_progress_bar.update(1)  # redraws at most every mininterval seconds

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return super().on_validation_end(trainer, module)
        self.val_progress_bar.close()

    def get_metrics(self, trainer, module) -> dict[str, str]:
        """The module's progress-bar values (the G and D losses) but ``kimg``, which the bar shows."""
        return {LOSSES.get(name, name): f"{value:.3f}"
                for name, value in trainer.progress_bar_metrics.items() if name != "kimg"}


class Ticks(Callback):
    """NVlabs' tick line every ``kimg`` thousand images, and at the end of training, printed on
    rank 0 through ``tqdm.write`` (so the bar stays intact) and appended as one JSON object per
    line to ``<trainer.log_dir>/stats.jsonl`` (``tick``, ``kimg``, ``images_seen``, ``timestamp``,
    ``time_s``, ``sec_per_tick``, ``sec_per_kimg``, ``maintenance_s``, ``cpumem_gb``, ``gpumem_gb``,
    ``reserved_gb``, the mean ``loss_G`` and ``loss_D`` of rank 0 over the tick, ``augment_p``).

    Tick 0 is printed after the first step, as NVlabs does; it spans everything since fit started
    (sanity check, data loader start-up, the first step). The last tick is printed at the step that
    reaches ``total_kimg``, before Lightning's validation pass at the end of fit. A resumed run is a
    new process: its tick numbers and ``time_s`` start again from 0 while ``kimg`` and
    ``images_seen`` continue, and its lines are appended to the same ``stats.jsonl``.
    """

    def __init__(self, kimg: float = 4.0):
        self.kimg = kimg
        self.path: Path | None = None

    def on_fit_start(self, trainer, module) -> None:
        # trainer.log_dir is a collective call under DDP: every rank must ask, not just rank 0.
        self.path = Path(trainer.log_dir or trainer.default_root_dir) / "stats.jsonl"
        self._start = self._tick_end = time.time()
        self._maintenance = maintenance_seconds(trainer)
        self._tick, self._before, self._tick_images = 0, module.images_seen, module.images_seen
        self._losses: dict[str, list[float]] = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        metrics = trainer.progress_bar_metrics
        for name in LOSSES:
            if name in metrics:
                self._losses.setdefault(name, []).append(float(metrics[name]))
        # The step that reaches total_kimg reports before the validation pass at the end of fit.
        if self._tick == 0 or trainer.should_stop or crossed(self._before, module.images_seen, self.kimg):
            self._report(trainer, module)
        self._before = module.images_seen

    def on_train_end(self, trainer, module) -> None:
        if module.images_seen != self._tick_images:  # stopped otherwise (max_steps, max_time)
            self._report(trainer, module)

    def _report(self, trainer, module) -> None:
        now, maintenance = time.time(), maintenance_seconds(trainer)
        tick_maintenance = maintenance - self._maintenance
        seconds = now - self._tick_end - tick_maintenance
        gpumem, reserved = _gpu_memory_gb(module.device)
        stats = {"tick": self._tick, "kimg": module.kimg, "images_seen": module.images_seen,
                 "timestamp": now, "time_s": now - self._start, "sec_per_tick": seconds,
                 "sec_per_kimg": seconds / (module.images_seen - self._tick_images) * 1000,
                 "maintenance_s": tick_maintenance, "cpumem_gb": _cpu_memory_gb(),
                 "gpumem_gb": gpumem, "reserved_gb": reserved}
        stats |= {name: sum(values) / len(values) for name, values in self._losses.items()}
        if getattr(module, "augment_p", None) is not None:
            stats["augment_p"] = float(module.augment_p)
        if trainer.is_global_zero:
            Tqdm.write(tick_line(stats), file=sys.stdout)
            self._append(stats)
        self._tick += 1
        self._tick_end, self._tick_images, self._maintenance, self._losses = now, module.images_seen, maintenance, {}

    def _append(self, stats: dict) -> None:
        """Append one line to ``stats.jsonl``; a file that cannot be written (a full disk) is a
        warning, not a reason to stop training."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as file:  # one whole line per tick, flushed on close
                file.write(json.dumps(stats) + "\n")
        except OSError as error:
            warnings.warn(f"Could not append the tick figures to {self.path} ({error.strerror or error}); "
                          "training goes on, the tick lines are still printed")


def tick_line(stats: dict) -> str:
    """NVlabs' status line of one tick's figures (field widths as in its training loop)."""
    fields = [f"tick {stats['tick']:<5d}", f"kimg {stats['kimg']:<8.1f}",
              f"time {_duration(stats['time_s']):<12s}", f"sec/tick {stats['sec_per_tick']:<7.1f}",
              f"sec/kimg {stats['sec_per_kimg']:<7.2f}", f"maintenance {stats['maintenance_s']:<6.1f}",
              f"cpumem {stats['cpumem_gb']:<6.2f}", f"gpumem {stats['gpumem_gb']:<6.2f}",
              f"reserved {stats['reserved_gb']:<6.2f}"]
    if "augment_p" in stats:
        fields.append(f"augment {stats['augment_p']:.3f}")
    return " ".join(fields).rstrip()


def _duration(seconds: float) -> str:
    """``42s``, ``1m 02s``, ``3h 04m 05s`` or ``2d 03h 04m``."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s"
    return f"{s // 86400}d {s // 3600 % 24:02d}h {s // 60 % 60:02d}m"


def _cpu_memory_gb() -> float:
    """Resident memory of this process now (its peak where there is no /proc)."""
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30
    except OSError:
        import resource  # ru_maxrss is in KiB on Linux, bytes on macOS

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2 ** 30 if sys.platform == "darwin" else 2 ** 20)


def _gpu_memory_gb(device: torch.device) -> tuple[float, float]:
    """Peak CUDA memory allocated and reserved since the previous call (GiB); zeros off CUDA."""
    if device.type != "cuda":
        return 0.0, 0.0
    peaks = torch.cuda.max_memory_allocated(device) / 2 ** 30, torch.cuda.max_memory_reserved(device) / 2 ** 30
    torch.cuda.reset_peak_memory_stats(device)
    return peaks
