"""StyleGAN3 (Karras et al. 2021, *Alias-Free Generative Adversarial Networks*) for lightning-stylegan.

Plugins (registered in this package's ``pyproject.toml``): the generators ``stylegan3-t`` and
``stylegan3-r`` (``synthesis``, on ``layers``, ``schedule``, ``filters`` and ``filtered_lrelu``), the
augmentation ``blur`` (StyleGAN3-R's D-input blur), the metrics ``eqt_int``, ``eqt_frac`` and ``eqr``
(``equivariance``, ``eq_transforms``) and the converter ``stylegan3`` for NVlabs' network pickles
(``convert_nvlabs``). Core code never imports this package.
"""
