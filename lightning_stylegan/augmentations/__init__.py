"""Augmentation plugins (entry-point group ``lightning_stylegan.augmentations``): what D sees.

``base`` holds the interface; ``none``, ``ada`` (stylegan2-ada-pytorch's pipeline) and
``diffaugment`` (Zhao et al. 2020) are the built-ins.
"""
