"""The interface of an adversarial loss plugin: what G's and D's main phases compute from D's logits.

A loss plugin is a class with ``api_version``, ``description`` and two methods that turn D's logits
[N, 1] into a per-sample loss [N, 1]; the training module averages it. What runs on which input is
fixed by the module and declared by the plugin:

* G's phase: G makes N fakes from fresh latents, D scores them (augmented, as every image D sees);
  when ``generator_sees_reals`` is true D also scores the step's N reals (detached: G's loss gets no
  gradient through them, D gets no update in G's phase). ``generator(fake, real)`` is G's loss.
* D's phase: G makes N fakes without gradient, D scores them and the N reals (both augmented).
  ``discriminator(real, fake)`` is D's loss.

Sample i of ``fake`` and sample i of ``real`` belong together (a relativistic loss pairs them).
Under DDP each rank pairs its own N reals and fakes, and DDP averages the ranks' gradients, so the
loss is the mean over every rank's pairs. The options of a plugin are its constructor's keyword
arguments (``model.loss_options``), checked against its signature.
"""
from __future__ import annotations

import torch


class AdversarialLoss:
    """Base class of loss plugins. Subclasses implement ``generator`` and ``discriminator``."""

    api_version = 1
    description = ""
    generator_sees_reals = False

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        """G's loss per sample from D's logits of the fakes (and of the reals when
        ``generator_sees_reals``; None otherwise)."""
        raise NotImplementedError(f"{type(self).__name__} must implement generator()")

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """D's loss per sample from D's logits of the reals and of the fakes."""
        raise NotImplementedError(f"{type(self).__name__} must implement discriminator()")
