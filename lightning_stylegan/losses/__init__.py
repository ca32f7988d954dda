"""Adversarial loss plugins (entry-point group ``lightning_stylegan.losses``): the objective G and D
play.

``base`` holds the interface; ``logistic`` (the non-saturating logistic loss of StyleGAN and
StyleGAN2, the default), ``hinge`` (SAGAN, BigGAN) and ``rpgan`` (relativistic pairing, R3GAN) are
the built-ins. Gradient penalties (R1, R2, path length) are callbacks, not losses
(``training.regularizers``).
"""
