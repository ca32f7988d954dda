"""lightning-stylegan: StyleGAN-family GANs on PyTorch Lightning, every variant a plugin.

Layout: ``registry`` (plugin discovery), ``nn`` (building blocks), ``normalizations``,
``generators``, ``discriminators`` and ``growth`` (built-in plugins by kind), ``networks``
(G and D assembled from plugins), ``cli`` (the ``lightning-stylegan`` command).
"""
from importlib import metadata

try:
    __version__ = metadata.version("lightning-stylegan")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
