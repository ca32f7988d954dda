"""The interface of an augmentation plugin: a differentiable map applied to every image D sees.

Karras et al. 2020 (StyleGAN2-ADA; 003_22a7711458f25a1a.txt Section 1.0.2): reals and fakes alike
are augmented before D, in every phase (G main, D main, D reg), with a probability ``p`` that the
``ada`` controller (``training.ada``) may tune during training. Gradients flow through the
augmentation to G (and, for R1, to the un-augmented reals), so every op must be differentiable
twice in its input.
"""
from __future__ import annotations

import torch


class Augmentation(torch.nn.Module):
    """Base class of augmentation plugins.

    ``p`` is a float32 buffer: saved in every checkpoint with the module's state, so a resumed run
    continues with it. ``adaptive`` says whether the ``ada`` controller tunes ``p`` (when its
    ``--ada.target`` is set and the recipe does not fix ``p`` in ``model.augment_options``).
    Subclasses implement ``forward(images) -> images`` for images of shape [N, C, H, W] in [-1, 1]
    (any C the plugin supports), returning the same shape, dtype and device.
    """

    api_version = 1
    description = ""
    adaptive = False

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.register_buffer("p", torch.tensor(float(p), dtype=torch.float32))

    def set_progress(self, images_seen: int, transfer: bool) -> None:
        """Training progress, given by the training module at the start of every training step,
        before any image of the step is augmented: ``images_seen`` is the module's checkpointed
        counter of real images shown (so a resumed run passes what an uninterrupted one would),
        ``transfer`` whether the run started from other weights (``model.init_from``). The default
        ignores it; a plugin whose augmentation follows a schedule (StyleGAN3's fading D blur)
        overrides it and keeps what it needs, which is then no state of its own to checkpoint."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")
