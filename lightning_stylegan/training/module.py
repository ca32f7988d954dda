"""The StyleGAN2 training LightningModule: manual optimization of G and D in the phases of
002_0a18e98dc55024d1.txt Appendix B (G main, G reg = path length, D main, D reg = R1 and R2), the
adversarial loss of a loss plugin (``lightning_stylegan.losses``), style mixing, the generator EMA,
the augmentation of every image D sees (StyleGAN2-ADA, with the ``ada`` controller's p),
hyper-parameters that follow schedules in images seen (``schedules``), and the project's own
counters.

Intervals, EMA, schedules, sample grids and checkpoints are keyed on ``images_seen`` and the step
counters below, never on Lightning's ``global_step`` (which counts optimizer steps, two or more per
batch here). Each step reseeds torch from (seed, rank, step), so a resumed run draws the same
latents, noise and mixing points as an uninterrupted one.
"""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch

from .. import registry
from ..dependency_noise import hide_dependency_noise
from ..errors import ConfigError
from ..network_files import COUNTERS, NetworkFileError, load_networks, load_state
from ..nn.norms import apply_constraints
from ..plugin_options import bind_options
from .ada import AdaController
from .checkpoints import KimgCheckpoint
from .ema import ema_beta, update_ema
from .options import DiscriminatorOptions, GeneratorOptions
from .penalties import gradient_penalty, path_lengths
from .regularizers import R1, R2, GradientPenalty, PathLength
from .run_networks import initial_networks, network_hparams
from .schedules import Schedule, as_hparam, as_scheduled, value_at
from .snapshots import log_rho_histograms
from .transfer import freeze_discriminator

hide_dependency_noise()  # e.g. Lightning's warning that G_ema is in eval mode (on purpose: it is only averaged)


class StyleGAN2(pl.LightningModule):
    """G, D and G_ema trained with a loss plugin (non-saturating logistic by default) and lazy
    R1 / R2 / path length.

    Args:
        resolution: image size (linked from ``data.resolution`` by the CLI).
        channels: image channels (linked from ``data.channels``).
        label_dim: label classes for conditional training, 0 = unconditional (linked from ``data.label_dim``).
        generator: generator options (plugins, sizes).
        discriminator: discriminator options.
        g_lr: Adam learning rate of G (before the lazy-regularization adjustment), a number or a
            schedule in images seen, ``{start, end, kimg, kind: constant|linear|cosine}``.
        d_lr: Adam learning rate of D (a number or a schedule).
        betas: Adam betas (StyleGAN2: 0 and 0.99); beta2 may be a schedule.
        eps: Adam epsilon.
        style_mixing_prob: probability of style-mixing regularization per batch; null = 0.9 for a
            generator with a W space, 0 for one without (which refuses a probability > 0).
        ema_kimg: half-life of the generator EMA, in thousands of images (a number or a schedule).
        ema_rampup: cap the EMA half-life at this fraction of the images seen so far, None = no ramp-up.
        total_kimg: stop after this many thousand real images.
        seed: seed of the per-step random streams (latents, noise, mixing).
        max_nonfinite_steps: stop with an error after this many consecutive steps with non-finite losses.
        growth: growth plugin name: ``none`` (fixed resolution) or ``progressive`` (configs A-D).
        growth_options: keyword options of the growth plugin (e.g. ``phase_kimg``, ``fade_kimg``,
            ``lr_scale`` and ``batch_size`` per resolution for ``progressive``, and its
            ``reset_optimizer``, true by default as NVlabs' TF ``reset_opt_for_new_lod``).
        init_from: start a new run from the G, D and G_ema weights of this checkpoint (one of ours,
            or one written by ``lightning-stylegan convert``): transfer learning. The recipe's
            network options must build the same networks. Counters and optimizers start fresh;
            to resume a run use ``--ckpt_path`` instead. As NVlabs' ``--resume``: no EMA ramp-up,
            and the ``ada`` controller's default rate is 100 kimg (``training.transfer``).
        augment: augmentation plugin applied to every image D sees (reals and fakes, in G main,
            D main and D reg): ``none``, ``ada`` (StyleGAN2-ADA's pipeline), ``diffaugment``.
        augment_options: keyword options of the augmentation plugin (``ada``: ``preset`` and
            per-op multipliers). A ``p`` here fixes the augmentation probability; without it the
            ``ada`` callback tunes p of an adaptive plugin (``--ada.target``, null = fixed p).
        freeze_d: Freeze-D (Mo et al. 2020, NVlabs' ``--freezed``): D's first N layers from the
            input get no updates.
        fake_labels: the labels G gets for the fakes of a conditional run. ``dataset``: drawn from the
            training set's labels in every phase (NVlabs' stylegan2-ada-pytorch); ``reals_for_d``: the
            real minibatch's own labels in D's step, drawn in G's (NVlabs' TF StyleGAN and StyleGAN2,
            ``D_logistic_simplegp`` / ``D_logistic_r1``; the recipes of configs A-F, Table 2 and PIN);
            ``reals``: the real minibatch's labels in every phase, so fake i and real i share a label
            (R3GAN's official trainer; path length takes the first labels of the batch).
        loss: adversarial loss plugin: ``logistic`` (StyleGAN's non-saturating loss), ``hinge``,
            ``rpgan`` (relativistic pairing, R3GAN), or an installed plugin.
        loss_options: keyword options of the loss plugin, checked against its constructor.
    """

    def __init__(self, resolution: int = 256, channels: int = 3, label_dim: int = 0,
                 generator: GeneratorOptions | None = None, discriminator: DiscriminatorOptions | None = None,
                 g_lr: float | Schedule = 0.0025, d_lr: float | Schedule = 0.0025,
                 betas: tuple[float, float | Schedule] = (0.0, 0.99), eps: float = 1e-8,
                 style_mixing_prob: float | None = None, ema_kimg: float | Schedule = 10.0,
                 ema_rampup: float | None = 0.05, total_kimg: float = 25000, seed: int = 0,
                 max_nonfinite_steps: int = 100, growth: str = "none", growth_options: dict | None = None,
                 init_from: str | None = None, augment: str = "none", augment_options: dict | None = None,
                 freeze_d: int = 0, fake_labels: Literal["dataset", "reals_for_d", "reals"] = "dataset",
                 loss: str = "logistic", loss_options: dict | None = None):
        super().__init__()
        if fake_labels not in ("dataset", "reals_for_d", "reals"):
            raise ConfigError(f"model.fake_labels must be 'dataset' (stylegan2-ada-pytorch), 'reals_for_d' (NVlabs' "
                              f"TF code) or 'reals' (R3GAN), got {fake_labels!r}")
        networks = network_hparams(resolution, channels, label_dim, generator, discriminator, growth, growth_options)
        growth_label, augment_label = f"the growth plugin {growth!r}", f"the augmentation plugin {augment!r}"
        augment_class = registry.load("augmentation", augment)
        augment_options, augment_p = _scheduled_p(augment_options)
        augment_options = bind_options(augment_class, augment_options, key="model.augment_options",
                                       label=augment_label)
        loss_label = f"the loss plugin {loss!r}"
        loss_class = registry.load("loss", loss)
        loss_options = bind_options(loss_class, loss_options, key="model.loss_options", label=loss_label)
        # Hyper-parameters that may follow a schedule in images seen, by their TensorBoard names.
        self.schedules = {"g_lr": as_scheduled(g_lr, "model.g_lr"), "d_lr": as_scheduled(d_lr, "model.d_lr"),
                          "beta2": as_scheduled(betas[1], "model.betas[1]"),
                          "ema_kimg": as_scheduled(ema_kimg, "model.ema_kimg")}
        if augment_p is not None:
            self.schedules["augment_p"] = augment_p
        self.G, self.D, self.G_ema = initial_networks(networks)
        style_mixing_prob = _style_mixing_for(self.G, style_mixing_prob)
        self.save_hyperparameters(networks | {
            "g_lr": as_hparam(self.schedules["g_lr"]), "d_lr": as_hparam(self.schedules["d_lr"]),
            "betas": [betas[0], as_hparam(self.schedules["beta2"])], "eps": eps,
            "style_mixing_prob": style_mixing_prob, "ema_kimg": as_hparam(self.schedules["ema_kimg"]),
            "ema_rampup": ema_rampup, "total_kimg": total_kimg, "seed": seed,
            "max_nonfinite_steps": max_nonfinite_steps, "init_from": init_from, "augment": augment,
            "augment_options": augment_options | ({"p": as_hparam(augment_p)} if augment_p is not None else {}),
            "freeze_d": freeze_d, "fake_labels": fake_labels, "loss": loss, "loss_options": loss_options})
        self.automatic_optimization = False
        self.growth = _construct(registry.load("growth", growth), networks["growth_options"], "model.growth_options",
                                 growth_label, resolution)
        self.loss = _construct(loss_class, loss_options, "model.loss_options", loss_label)
        if init_from:
            self._init_weights_from(init_from)
        self.frozen_d_layers = freeze_discriminator(self.D, freeze_d)
        self.augment = _construct(augment_class, augment_options, "model.augment_options", augment_label)
        if augment_p is not None:
            self.augment.p.fill_(value_at(augment_p, 0))
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._stats: dict[str, list[torch.Tensor]] = {}
        self._nonfinite_streak = torch.zeros([], dtype=torch.long)
        self._nonfinite_grads = torch.zeros([], dtype=torch.long)
        self._tick = (time.time(), 0)
        # The run's resolved options (flattened), set by the CLI and saved with every checkpoint, so a
        # resumed run can say which options changed (training.resume).
        self.run_config: dict | None = None
        self._label_table: torch.Tensor | None = None  # the training set's one-hot labels, for G's labels
        self._lod: float | None = None  # the growth stage's lod at the last step (checkpointed)
        self._val_sums: dict[str, torch.Tensor] = {}  # validation: [sum, count] of D's logits per kind

    def _init_weights_from(self, path: str) -> None:
        source = load_networks(path)
        for name in ("G", "D", "G_ema"):
            net = getattr(source, name)
            if net is None:
                if name == "D":
                    warnings.warn(f"{path} holds no discriminator; D starts from random weights")
                    continue
                net = source.G_ema  # an exported generator: G starts from the EMA weights
            try:
                load_state(getattr(self, name), net.state_dict(), f"--model.init_from {path} ({name})")
            except NetworkFileError as error:
                raise NetworkFileError(f"{error}. Set the recipe's model options to those of the source: "
                                       f"generator {source.hparams.get('generator', source.G_ema.init_kwargs)}, "
                                       f"discriminator {source.hparams.get('discriminator')}") from error

    # ----------------------------------------------------------------- counters and helpers
    @property
    def images_seen(self) -> int:
        return self.counters["images_seen"]

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000

    @property
    def stage(self):
        """The growth schedule's state now: resolution, fade-in alpha, lr scale, batch size."""
        return self.growth.state(self.kimg)

    @property
    def augment_p(self) -> torch.Tensor | None:
        """The augmentation probability now (a float32 tensor, saved with the augmentation's state);
        None without augmentation (as NVlabs, which then has no augment pipe to report)."""
        return self.augment.p if self.hparams["augment"] != "none" else None

    def scheduled(self) -> dict[str, float]:
        """The values now of the hyper-parameters that follow a schedule, by name (``g_lr``,
        ``d_lr``, ``beta2``, ``ema_kimg``, ``augment_p``, ``r1_gamma``, ``r2_gamma``)."""
        values = dict(self.schedules)
        for kind in (R1, R2):
            regularizer = self.callback(kind, enabled_only=False)
            if regularizer is not None:
                values[f"{regularizer.group}_gamma"] = regularizer.gamma
        return {name: value_at(value, self.images_seen) for name, value in values.items()
                if isinstance(value, Schedule)}

    def callback(self, kind: type, enabled_only: bool = True):
        """The trainer's callback of this kind, if the run has one (and, with ``enabled_only``, it is on)."""
        trainer = self._trainer
        found = [cb for cb in (trainer.callbacks if trainer else []) if isinstance(cb, kind)]
        if len(found) > 1:
            raise ConfigError(f"Give at most one {kind.__name__} callback, got {len(found)}")
        return found[0] if found and (found[0].enabled or not enabled_only) else None

    def plugins(self) -> dict[str, str]:
        return self.G.plugins() | {"discriminator": self.hparams["discriminator"]["topology"],
                                   "growth": self.hparams["growth"], "augmentation": self.hparams["augment"],
                                   "loss": self.hparams["loss"]}

    @property
    def fixed_augment_p(self) -> bool:
        """Whether the recipe fixes p (a ``p`` in ``augment_options``): then no controller tunes it,
        and a resumed run uses this value, not the checkpoint's."""
        return "p" in self.hparams["augment_options"]

    def ada_controller(self) -> AdaController | None:
        """The ``ada`` callback when it tunes this run's augmentation probability: the plugin allows
        it and the recipe does not fix p."""
        ada = self.callback(AdaController)
        return ada if ada is not None and self.augment.adaptive and not self.fixed_augment_p else None

    # ----------------------------------------------------------------- Lightning hooks
    def adam_settings(self, stage=None) -> list[dict]:
        """Adam's settings for G and D now: lr x c and betas ** c with c = k / (k + 1) of the lazy
        regularizer's interval k (002_0a18e98dc55024d1.txt Appendix B), lr and beta2 at the images
        seen (``schedules``), lr scaled per resolution by the growth ``stage``. As in NVlabs' code,
        c depends on the interval alone: a lazy interval with the regularizer's weight 0 (config C:
        no path length) still adjusts Adam."""
        settings = []
        lr_scale = stage.lr_scale if stage is not None else 1.0
        beta1, beta2 = self.hparams["betas"][0], value_at(self.schedules["beta2"], self.images_seen)
        for name, c in [("g_lr", self._adam_ratio("G")), ("d_lr", self._adam_ratio("D"))]:
            lr = value_at(self.schedules[name], self.images_seen)
            settings.append({"lr": lr * c * lr_scale, "eps": self.hparams["eps"],
                             "betas": (beta1 ** c, beta2 ** c)})
        return settings

    def _adam_ratio(self, network: str) -> float:
        """c of the network's lazy regularization: path length's for G; for D the interval of its
        gradient penalties (R1 and R2 share one pass, so an interval), R1's when both are off."""
        if network == "G":  # a generator without a W space has no path length, lazy or not
            regularizer = self.callback(PathLength, enabled_only=False)
            return regularizer.adam_ratio if regularizer and self.G.w_space else 1.0
        penalties = [reg for reg in (self.callback(R1, enabled_only=False), self.callback(R2, enabled_only=False))
                     if reg is not None]
        enabled = [reg for reg in penalties if reg.enabled]
        return (enabled or penalties)[0].adam_ratio if penalties else 1.0

    def setup(self, stage: str) -> None:
        """Binds the regularizers to this run's networks: path length to a generator's W space,
        and R1 and R2, which share D's regularization pass, to one interval."""
        path_length = self.callback(PathLength, enabled_only=False)
        if path_length is not None:
            path_length.use_for(self.hparams["generator"]["topology"], self.G.w_space)
        r1, r2 = self.callback(R1), self.callback(R2)
        if r1 is not None and r2 is not None and r1.interval != r2.interval:
            raise ConfigError(f"R1 and R2 share D's regularization pass: give them one interval, got "
                              f"--r1.interval {r1.interval} and --r2.interval {r2.interval}")

    def configure_optimizers(self):
        (g, d) = self.adam_settings()
        # foreach: one op per update step over all parameters, not one per parameter.
        d_parameters = [p for p in self.D.parameters() if p.requires_grad]  # not Freeze-D's layers
        return [torch.optim.Adam(self.G.parameters(), lr=g["lr"], betas=g["betas"], eps=g["eps"], foreach=True),
                torch.optim.Adam(d_parameters, lr=d["lr"], betas=d["betas"], eps=d["eps"], foreach=True)]

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Images from the EMA generator."""
        return self.G_ema(z, c, **kwargs)

    def on_train_start(self) -> None:
        self._tick = (time.time(), self.images_seen)
        dataset = getattr(getattr(self.trainer, "datamodule", None), "dataset", None)
        labels = getattr(dataset, "labels", None) if self.hparams["label_dim"] else None
        self._label_table = torch.as_tensor(labels, device=self.device) if labels is not None else None

    def training_step(self, batch, batch_idx):
        real, real_c = batch
        real_c = real_c if self.hparams["label_dim"] else None
        torch.manual_seed(hash((self.hparams["seed"], self.global_rank, self.counters["g_steps"])) % 2 ** 63)
        opt_g, opt_d = self.optimizers()
        stage = self.stage
        # Set every step, after a resume too: this run's lr, betas, eps and regularizer intervals
        # (not those saved with the moments), at the stage and the schedules' images seen.
        for optimizer, settings in zip((opt_g, opt_d), self.adam_settings(stage)):
            for group in optimizer.param_groups:
                group.update(settings)
        self._reset_optimizers_for_new_layers(stage, (opt_g, opt_d))
        real = self._reals_at(real, stage)
        batch_size = real.shape[0]
        path_length, ada = self.callback(PathLength), self.ada_controller()
        r1, r2 = self.callback(R1), self.callback(R2)
        # The augmentation's schedule hook (a no-op by default), from the checkpointed counter.
        self.augment.set_progress(self.images_seen, transfer=bool(self.hparams["init_from"]))
        if "augment_p" in self.schedules:
            self.augment.p.fill_(value_at(self.schedules["augment_p"], self.images_seen))

        # G main (+ path length when not lazy): the loss plugin's G loss from D's logits of the
        # fakes (and of the step's reals, for a relativistic loss).
        self.toggle_optimizer(opt_g)
        g_reals_labels = self.hparams["fake_labels"] == "reals"
        z, gen_c = self._latents(batch_size, real_c, reals_labels=g_reals_labels)
        fake, ws = self._generate(z, gen_c, stage)
        fake_logits = self.D(self.augment(fake), gen_c, alpha=stage.alpha)
        real_logits = self.D(self.augment(real), real_c, alpha=stage.alpha) if self.loss.generator_sees_reals else None
        loss_g = self.loss.generator(fake_logits, real_logits).mean()
        self._record({"Loss/G/loss": loss_g, "Loss/scores/fake": fake_logits.mean()})
        if path_length is not None and not path_length.lazy:
            # NVlabs' Gboth: its own forward of the first batch / batch_shrink latents, one step for both.
            shrunk = max(batch_size // path_length.batch_shrink, 1)
            fake, ws = self._generate(z[:shrunk], gen_c[:shrunk] if gen_c is not None else None, stage)
            loss_g = loss_g + self._path_length_loss(path_length, fake, ws)
        self._optimize(opt_g, self.G, loss_g)
        if path_length is not None and path_length.lazy and path_length.due(self.counters["g_steps"]):
            shrunk = max(batch_size // path_length.batch_shrink, 1)
            fake, ws = self._generate(*self._latents(shrunk, real_c, reals_labels=g_reals_labels), stage)
            loss = self._path_length_loss(path_length, fake, ws) * path_length.loss_scale
            # "+ output * 0" keeps the whole output in the graph, as NVlabs does, so DDP sees it used.
            self._optimize(opt_g, self.G, loss + fake[:, 0, 0, 0].mean() * 0)
            self.counters["g_reg_steps"] += 1
        self.untoggle_optimizer(opt_g)

        # D main (+ R1 / R2 when not lazy): the loss plugin's D loss from D's logits of the reals
        # and of fakes made without gradient. R1 / R2 are gradients in the un-augmented images.
        self.toggle_optimizer(opt_d)
        z, gen_c = self._latents(batch_size, real_c, reals_labels=self.hparams["fake_labels"] != "dataset")
        with torch.no_grad():
            fake, _ = self._generate(z, gen_c, stage, update_emas=True)
        r1_now, r2_now = (reg is not None and not reg.lazy for reg in (r1, r2))
        fake_in = fake.detach().requires_grad_(r2_now)
        fake_logits = self.D(self.augment(fake_in), gen_c, alpha=stage.alpha)
        real_in = real.detach().requires_grad_(r1_now)
        real_logits = self.D(self.augment(real_in), real_c, alpha=stage.alpha)
        loss_d = self.loss.discriminator(real_logits, fake_logits).mean()
        self._record({"Loss/D/loss": loss_d, "Loss/scores/real": real_logits.mean(),
                      "Loss/signs/real": real_logits.detach().sign().mean()})
        if ada is not None:
            ada.record(real_logits)
        if r1_now or r2_now:
            loss_d = loss_d + self._penalties_loss([(r1, real_logits, real_in)] * r1_now +
                                                   [(r2, fake_logits, fake_in)] * r2_now, stage)
        self._optimize(opt_d, self.D, loss_d)
        due = [reg for reg in (r1, r2) if reg is not None and reg.lazy and reg.due(self.counters["d_steps"])]
        if due:
            self._lazy_penalties(due, real, real_c, fake, gen_c, stage, opt_d, ada)
        self.untoggle_optimizer(opt_d)

        global_batch = batch_size * self.trainer.world_size
        rampup = None if self.hparams["init_from"] else self.hparams["ema_rampup"]  # NVlabs' --resume rule
        ema_kimg = value_at(self.schedules["ema_kimg"], self.images_seen)
        update_ema(self.G_ema, self.G, ema_beta(global_batch, self.images_seen, ema_kimg, rampup))
        if ada is not None and ada.due(self.counters["g_steps"]):
            ada.update(self.augment.p, self.trainer.strategy, global_batch, transfer=bool(self.hparams["init_from"]))
        self.counters["images_seen"] += global_batch
        self.counters["g_steps"] += 1
        self.counters["d_steps"] += 1
        finite = torch.isfinite(loss_g.detach()) & torch.isfinite(loss_d.detach())
        self._nonfinite_streak = (self._nonfinite_streak.to(finite.device) + 1) * finite.logical_not()
        self.log_dict({"kimg": self.kimg, "loss_G": loss_g.detach(), "loss_D": loss_d.detach()},
                      prog_bar=True, logger=False, batch_size=batch_size)
        if self.counters["g_steps"] % self.trainer.log_every_n_steps == 0:
            self._flush_stats()
        if self.images_seen >= self.hparams["total_kimg"] * 1000:
            self.trainer.should_stop = True

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        """D's scores on the validation images and on as many EMA fakes of fixed latents; with a
        held-out split (``data.val_held_out``) the second loader's training images, for r_v."""
        real, real_c = batch
        real_c = real_c if self.hparams["label_dim"] else None
        stage = self.stage
        real = self._reals_at(real, stage)
        real_logits = self.D(real, real_c, alpha=stage.alpha)
        if dataloader_idx == 1:
            self._add_val_scores("train", real_logits)
            return
        generator = torch.Generator().manual_seed(hash((self.hparams["seed"], batch_idx)) % 2 ** 63)
        z = torch.randn(real.shape[0], self.G_ema.z_dim, generator=generator).to(real.device)
        fake = self.G_ema(z, real_c, noise_mode="const", resolution=stage.resolution, alpha=stage.alpha)
        fake_logits = self.D(fake, real_c, alpha=stage.alpha)
        self._add_val_scores("val", real_logits)
        self._add_val_scores("fake", fake_logits)
        # "step" sets the logger's x-axis for these values: images seen, like every other scalar.
        self.log_dict({"Val/scores/real": real_logits.mean(), "Val/scores/fake": fake_logits.mean(),
                       "Val/D/loss": self.loss.discriminator(real_logits, fake_logits).mean(),
                       "step": float(self.images_seen)}, batch_size=real.shape[0], sync_dist=True,
                      add_dataloader_idx=False)

    def _add_val_scores(self, name: str, logits: torch.Tensor) -> None:
        self._val_sums[name] += torch.tensor([float(logits.double().sum()), logits.numel()], dtype=torch.float64)

    def on_validation_epoch_start(self) -> None:
        self._val_sums = {name: torch.zeros(2, dtype=torch.float64) for name in ("val", "fake", "train")}

    def on_validation_epoch_end(self) -> None:
        """r_v = (E[D_train] - E[D_validation]) / (E[D_train] - E[D_generated]) (StyleGAN2-ADA Eq. 1
        left; 003_22a7711458f25a1a.txt Section 1.0.2): 0 = no overfitting, 1 = the validation images
        score like fakes. Logged as ``Val/r_v`` when the validation images are held out."""
        sums = {name: self.trainer.strategy.reduce(value.to(self.device), reduce_op="sum")
                for name, value in self._val_sums.items()}
        if float(sums["train"][1]) == 0 or float(sums["val"][1]) == 0:
            return
        train, val, fake = (float(sums[name][0] / sums[name][1]) for name in ("train", "val", "fake"))
        self.log_dict({"Val/r_v": (train - val) / (train - fake) if train != fake else float("nan"),
                       "Val/scores/train": train, "step": float(self.images_seen)}, add_dataloader_idx=False)

    def on_train_end(self) -> None:
        if self._stats:
            self._flush_stats()  # the steps since the last flush

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["counters"] = dict(self.counters)
        checkpoint["growth_lod"] = self._lod
        checkpoint["plugins"] = registry.provenance(self.plugins())
        if self.run_config is not None:
            checkpoint["run_config"] = self.run_config

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "counters" not in checkpoint:
            raise ValueError("This checkpoint was not written by lightning-stylegan's StyleGAN2 module "
                             "(it has no 'counters'); pass a checkpoint from `lightning-stylegan fit`.")
        self.counters = {name: int(checkpoint["counters"].get(name, 0)) for name in COUNTERS}
        # A checkpoint from before augmentation plugins existed trained without one: p = 0. A p fixed
        # by this run's augment_options replaces the checkpoint's.
        state = checkpoint["state_dict"]
        state.setdefault("augment.p", torch.zeros_like(self.augment.p))
        if self.fixed_augment_p:
            state["augment.p"] = self.augment.p.clone()
        self._lod = checkpoint.get("growth_lod")

    # ----------------------------------------------------------------- phases
    def _reset_optimizers_for_new_layers(self, stage, optimizers) -> None:
        """The growth schedule's ``reset_optimizer``: a new floor or ceil of lod clears Adam's state."""
        lod, previous = self.growth.lod(stage), self._lod
        self._lod = lod
        if self.growth.reset_optimizer and previous is not None and \
                (math.floor(lod) != math.floor(previous) or math.ceil(lod) != math.ceil(previous)):
            for optimizer in optimizers:
                optimizer.optimizer.state.clear()

    def _latents(self, count: int, real_c: torch.Tensor | None,
                 reals_labels: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z ~ N(0, I) and, for a conditional G, labels drawn at random from the training set's labels
        (NVlabs draws each phase's from the dataset, so G sees the label distribution of the data);
        without a data module that holds labels, from the batch's real labels. ``reals_labels``:
        the batch's own labels, its first ``count`` (``fake_labels``)."""
        z = torch.randn(count, self.G.z_dim, device=self.device)
        if real_c is None or reals_labels:
            return z, None if real_c is None else real_c[:count]
        table = self._label_table if self._label_table is not None else real_c
        return z, table[torch.randint(len(table), (count,), device=table.device)]

    def _generate(self, z: torch.Tensor, c: torch.Tensor | None, stage, update_emas: bool = False):
        """Images from G at the growth stage, with style-mixing regularization, and their ws.
        ``update_emas``: the pass in which the synthesis network updates its running statistics.

        While growing, the crossover is drawn among the styles in use, ``num_ws - 2 floor(lod)``
        with lod = log2(R / resolution) + 1 - alpha, as NVlabs' StyleGAN and StyleGAN2 (TF) do."""
        if not self.G.w_space:
            return self.G(z, c), None
        in_use = self.G.num_ws - 2 * int(self.growth.lod(stage))
        ws = self.G.mix_styles(self.G.mapping(z, c), c, self.hparams["style_mixing_prob"], in_use)
        return self.G.synthesis(ws, resolution=stage.resolution, alpha=stage.alpha, update_emas=update_emas), ws

    def _reals_at(self, real: torch.Tensor, stage) -> torch.Tensor:
        """Reals at the stage's resolution, faded like the fakes: while alpha < 1, a blend of the
        image and its up-sampled half-resolution version (PGGAN Section 3), re-sampled as the
        synthesis network's own fade is (``downsample_image`` / ``upsample_image``)."""
        synthesis = self.G.synthesis
        while real.shape[-1] > stage.resolution:
            real = synthesis.downsample_image(real)
        if stage.alpha < 1:
            real = torch.lerp(synthesis.upsample_image(synthesis.downsample_image(real)), real, stage.alpha)
        return real

    def _path_length_loss(self, path_length: PathLength, fake: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        penalty = path_length.penalty(path_lengths(fake, ws))
        loss = penalty.mean() * path_length.weight_at(self.hparams["resolution"], self.G.num_ws)
        self._record({"Loss/pl_penalty": penalty.mean(), "Loss/G/reg": loss})
        return loss

    def _penalties_loss(self, terms: list[tuple[GradientPenalty, torch.Tensor, torch.Tensor]], stage) -> torch.Tensor:
        """R1 (reals) and R2 (fakes) from ``(regularizer, logits, images)``, each at the growth
        stage taken at the final resolution as NVlabs' TF training loops take R1
        (``penalties.gradient_penalty``'s ``upscale``): at stage r of R the stage's squared gradient
        norm / (R / r)^2; the same penalty once the final resolution fades in."""
        loss = 0
        for regularizer, logits, images in terms:
            penalty = gradient_penalty(logits, images, upscale=self.hparams["resolution"] // stage.resolution)
            loss = loss + regularizer.loss(penalty, self.images_seen).mean()
            self._record({f"Loss/{regularizer.group}_penalty": penalty.mean()})
        self._record({"Loss/D/reg": loss})
        return loss

    def _lazy_penalties(self, due: list[GradientPenalty], real, real_c, fake, gen_c, stage, opt_d, ada) -> None:
        """D's regularization pass: the due penalties (R1 on the step's reals, R2 on its D-step
        fakes), times the interval. "+ logits * 0" keeps every output in the graph, as NVlabs does,
        so DDP sees every parameter used."""
        terms, unused = [], 0
        for regularizer in due:
            images, c = (real, real_c) if isinstance(regularizer, R1) else (fake, gen_c)
            images = images.detach().requires_grad_(True)
            logits = self.D(self.augment(images), c, alpha=stage.alpha)
            if ada is not None and isinstance(regularizer, R1):  # NVlabs counts the D reg pass's signs too
                ada.record(logits)
            terms.append((regularizer, logits, images))
            unused = unused + logits.mean() * 0
        loss = self._penalties_loss(terms, stage) * due[0].loss_scale
        self._optimize(opt_d, self.D, loss + unused)
        self.counters["d_reg_steps"] += 1

    def _optimize(self, optimizer, network: torch.nn.Module, loss: torch.Tensor) -> None:
        """zero_grad, backward, replace non-finite gradients as NVlabs does, step, then project
        constrained parameters (PIN's rho) back onto their domain."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        grads = [p.grad for p in network.parameters() if p.grad is not None]
        if grads:
            # A sum is inf or nan when the tensor holds one (barring a finite overflow past 3e38):
            # a vectorized reduction, 10x cheaper on the CPU than isfinite().all() or the max norm.
            bad = torch.stack([g.sum() for g in grads]).isfinite().logical_not().sum()
            self._nonfinite_grads = self._nonfinite_grads.to(bad.device) + bad
            for g in grads:
                torch.nan_to_num_(g, nan=0.0, posinf=1e5, neginf=-1e5)
        optimizer.step()
        apply_constraints(network)

    # ----------------------------------------------------------------- logging
    def _record(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self._stats.setdefault(name, []).append(value.detach().float())

    def _flush_stats(self) -> None:
        """Average the recorded values since the last flush over steps and ranks, write them to
        the logger at step = images seen, and enforce the non-finite-loss limit."""
        names = sorted(self._stats)
        means = torch.stack([torch.stack(self._stats[name]).mean() for name in names]) if names else None
        self._stats = {}
        if means is not None:
            means = self.trainer.strategy.reduce(means, reduce_op="mean")
        now = time.time()
        start_time, start_images = self._tick
        metrics = {name: float(value) for name, value in zip(names, means if means is not None else [])}
        metrics["Progress/kimg"] = self.kimg
        stage = self.stage
        metrics["Progress/resolution"], metrics["Progress/alpha"] = stage.resolution, stage.alpha
        metrics["Progress/nonfinite_grads"] = int(self._nonfinite_grads)
        if self.augment_p is not None:
            metrics["Progress/augment"] = float(self.augment_p)
        for name, value in self.scheduled().items():
            metrics[f"Progress/schedule/{name}"] = value
        if self.images_seen > start_images:
            metrics["Timing/sec_per_kimg"] = (now - start_time) / (self.images_seen - start_images) * 1000
        self._tick = (now, self.images_seen)
        if self.logger is not None and self.trainer.is_global_zero:
            self.logger.log_metrics(metrics, step=self.images_seen)
            log_rho_histograms(self.trainer.loggers, self.G, self.images_seen)
        streak = int(self._nonfinite_streak)
        if streak >= self.hparams["max_nonfinite_steps"]:
            self._stop_on_nonfinite(streak)

    def _stop_on_nonfinite(self, streak: int) -> None:
        path = Path(self.trainer.default_root_dir) / f"nonfinite-kimg{self.kimg:.1f}.ckpt"
        KimgCheckpoint.save(self.trainer, path)  # checksummed and atomic, as every checkpoint
        raise FloatingPointError(
            f"The G/D losses were non-finite for {streak} consecutive steps (at {self.kimg:.1f} kimg); "
            f"the state was saved to {path}. Lower g_lr/d_lr, raise the R1 gamma, or train in "
            f"32-true precision, then resume from the last good checkpoint.")


def _construct(plugin, options: dict, key: str, label: str, *given):
    """``plugin(*given, **options)``; the plugin's own ``TypeError`` / ``ValueError`` about its
    options becomes a ``ConfigError`` naming the recipe key and the plugin."""
    try:
        return plugin(*given, **options)
    except (TypeError, ValueError) as error:  # the plugin's own check of its options
        raise ConfigError(f"{key} {options} of {label}: {error}") from error


def _scheduled_p(options: dict | None) -> tuple[dict, Schedule | None]:
    """``model.augment_options`` without a scheduled ``p``, and that schedule (None when ``p`` is a
    number or absent): the plugin is built with its default p, which the module then sets at every
    step from the images seen."""
    options = dict(options or {})
    if not isinstance(options.get("p"), (dict, Schedule)):
        return options, None
    schedule = as_scheduled(options.pop("p"), "model.augment_options.p")
    return options, schedule


def _style_mixing_for(G, probability: float | None) -> float:
    """``style_mixing_prob`` for this generator: unset, 0.9 with a W space and 0 without; a
    probability > 0 for a generator without one is an error."""
    if G.w_space:
        return 0.9 if probability is None else probability
    if probability:
        raise ConfigError(f"--model.style_mixing_prob {probability}: the generator {G.topology!r} has no W space, "
                          f"so it has no styles to mix; drop the option")
    return 0.0
