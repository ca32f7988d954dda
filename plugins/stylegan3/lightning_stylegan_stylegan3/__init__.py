"""StyleGAN3 (Karras et al. 2021, *Alias-Free Generative Adversarial Networks*) for lightning-stylegan.

Work in progress (issue 15): so far the layer schedule (``schedule``), the filter design
(``filters``) and the filtered leaky ReLU (``filtered_lrelu``). The generators, the filtered non-linearity, the EQ metrics and the pickle converter
are not written yet, so the package registers no entry points.
"""
