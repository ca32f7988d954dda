"""Image-quality metrics of generators (issue 5), one module per idea:

* ``features``: the pluggable feature extractor (entry-point group
  ``lightning_stylegan.feature_extractors``; built-ins ``inception`` and ``vgg16``) and its weights.
* ``feature_stats``: streaming feature statistics of generated and (cached) real images.
* ``frechet``: Fréchet Inception Distance (Heusel et al. 2017).
* ``kid``: Kernel Inception Distance (Binkowski et al. 2018).
* ``precision_recall``: improved precision/recall and the realism score (Kynkäänniemi et al. 2019).
* ``inception_score``: Inception Score (Salimans et al. 2016).
* ``lpips_distance`` and ``ppl``: LPIPS and the perceptual path length (StyleGAN, StyleGAN2).
* ``base``: the metric plugin interface (entry-point group ``lightning_stylegan.metrics``);
  ``feature_metrics``: the built-in FID, KID, PR, IS and realism plugins (``ppl`` holds PPL's).
* ``catalog``: metric names, parsed by the installed plugins; ``evaluate``: computing a list of
  them with a shared ``MetricContext``; ``callback``: during training; ``command``:
  ``lightning-stylegan metrics``.
* ``shards``: the work of a metric split over the processes of a ``torch.distributed`` group, and
  the per-batch seeds that make the samples independent of their number.
"""
