"""Discriminator topology plugins (entry-point group ``lightning_stylegan.discriminators``).

``base`` holds the shared layout and epilogue; ``original``, ``skip`` and ``residual`` are the
three topologies of StyleGAN2 Figure 7 / Table 2, each registered in ``pyproject.toml``.
"""
