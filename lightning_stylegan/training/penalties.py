"""The regularization terms as plain functions: zero-centred gradient penalties on reals (R1,
Mescheder et al. 2018; 002_0a18e98dc55024d1.txt Appendix B) and on fakes (R2, Roth et al. 2017; R3GAN
Eq. 3), and path length regularization (002_0a18e98dc55024d1.txt Section 3.2). The adversarial
losses are plugins (``lightning_stylegan.losses``).
"""
from __future__ import annotations

import math

import torch


def gradient_penalty(logits: torch.Tensor, images: torch.Tensor, upscale: int = 1) -> torch.Tensor:
    """``||grad_x D(x)||^2`` per sample: R1 for reals x, R2 for fakes; the graph is kept so the
    penalty can be minimized (double backward). ``images`` must require grad.

    ``upscale`` f > 1 takes the gradient where NVlabs' TF StyleGAN and StyleGAN2 take it while the
    networks grow: the reals of a stage of resolution r are up-scaled with nearest neighbours to
    the final R = f r (``training_loop.process_reals``) and D box-averages its input back down
    (``downscale2d``), so D sees the same r-pixel image. The gradient with respect to the R-pixel
    reals is then the r-pixel one spread over the f^2 copies of each pixel and divided by f^2, and
    its squared norm is ``||grad_x D(x)||^2 / f^2`` (exact: f^2 is a power of two)."""
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
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
