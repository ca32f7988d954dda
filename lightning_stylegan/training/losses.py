"""The StyleGAN2 loss terms as plain functions (002_0a18e98dc55024d1.txt Appendix B:
non-saturating logistic loss with R1 regularization; Section 3.2: path length regularization).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss per sample, ``-log sigmoid(D(G(z))) = softplus(-D(G(z)))``."""
    return F.softplus(-fake_logits)


def discriminator_loss(real_logits: torch.Tensor | None, fake_logits: torch.Tensor | None) -> torch.Tensor:
    """Logistic D loss per sample, ``softplus(D(G(z))) + softplus(-D(x))``."""
    loss = 0
    if fake_logits is not None:
        loss = loss + F.softplus(fake_logits)
    if real_logits is not None:
        loss = loss + F.softplus(-real_logits)
    return loss


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor, upscale: int = 1) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``||grad_x D(x)||^2`` per real sample; the graph is kept so the
    penalty can be minimized (double backward). ``real_images`` must require grad.

    ``upscale`` f > 1 takes the gradient where NVlabs' TF StyleGAN and StyleGAN2 take it while the
    networks grow: the reals of a stage of resolution r are up-scaled with nearest neighbours to
    the final R = f r (``training_loop.process_reals``) and D box-averages its input back down
    (``downscale2d``), so D sees the same r-pixel image. The gradient with respect to the R-pixel
    reals is then the r-pixel one spread over the f^2 copies of each pixel and divided by f^2, and
    its squared norm is ``||grad_x D(x)||^2 / f^2`` (exact: f^2 is a power of two)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3]) / upscale ** 2


def path_lengths(images: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    """``||J_w^T y||_2`` per sample (Eq. 4), with y ~ N(0, I) / sqrt(H W) so the value does not
    depend on the resolution, and the squared norm averaged over the ``num_ws`` layers' w
    (Appendix B: "an average of all individual layers of the synthesis network")."""
    noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


def gamma_pl(resolution: int) -> float:
    """Eq. 5: ``gamma_pl = ln 2 / (r^2 (ln r - ln 2))``, the path-length weight for y ~ N(0, I).

    ``path_lengths`` draws y / sqrt(H W) instead, which divides the squared penalty by r^2, so the
    equivalent weight there is ``r^2 * gamma_pl`` (see ``regularizers.PathLength``).
    """
    return math.log(2) / (resolution ** 2 * (math.log(resolution) - math.log(2)))
