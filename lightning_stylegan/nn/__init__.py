"""Pure-torch StyleGAN building blocks, shared by every plugin.

``filters``: [1,3,3,1] FIR up/down-sampling; ``layers``: equalized-lr linear and conv with fused
bias + activation; ``modulated_conv``: StyleGAN2 weight (de)modulation; ``mapping``: Z -> W;
``norms``: instance / pixel / pixel-instance normalization; ``style_layers``: the synthesis layers
that normalization plugins hand to generator topologies; ``minibatch_std``: the D statistic layer.
"""
