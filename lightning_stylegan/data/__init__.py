"""Training data: ``images`` (decode + resize policy), ``dataset`` (``ImageDataset`` over a folder,
a zip or the embedded Fashion-MNIST), ``embedded`` (that default set), ``datamodule``
(``ImageDataModule`` for Lightning) and ``build_fashion_mnist`` (rebuilds the embedded file).
"""
