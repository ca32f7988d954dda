"""R3GAN's networks (Huang, Gokaslan, Kuleshov, Tompkin 2024, *The GAN is dead; long live the GAN!
A Modern GAN Baseline*) for lightning-stylegan.

Plugins (registered in this package's ``pyproject.toml``): the generator ``r3gan`` (``generator``, a
generator without a W space) and the discriminator ``r3gan`` (``discriminator``), built from
``layers`` with the per-stage options of ``stages``, and the converter ``r3gan``
(``convert_official``) of the official network pickles. Their state dicts are keyed as the official
``R3GAN.Networks`` modules' (README). The loss (``rpgan``) and the R1/R2 penalties are core's.
Core code never imports this package.
"""
