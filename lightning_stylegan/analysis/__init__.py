"""Artifact analysis: look inside any generator as the circular-artifact paper
(000_2d004fc061d5976e.txt) and the rare-neuron paper (004_738a47e1aec6d700.txt) do.

``layers`` addresses the synthesis layers (paper numbering) and hooks their feature maps;
``feature_maps`` (Figures 3-4), ``amplification`` (Eq. 2), ``activation_rates`` (Eq. 1),
``ablation`` (Algorithm 1), ``detection`` (Table 2) and ``units`` (GANDissect, Figures 6-10) are the
experiments; ``command`` is ``lightning-stylegan analyze``.
"""
