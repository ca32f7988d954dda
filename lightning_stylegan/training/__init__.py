"""Training: the LightningModule (``module``), losses (``losses``), lazy-regularization callbacks
(``regularizers``), the generator EMA (``ema``), sample grids and kimg-keyed checkpoints
(``snapshots``), and the network options a recipe sets (``options``).
"""
