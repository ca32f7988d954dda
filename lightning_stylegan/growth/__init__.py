"""Progressive-growing schedule plugins (entry-point group ``lightning_stylegan.growth``).

``base`` holds the interface; ``none`` (fixed resolution) and ``progressive`` (PGGAN / StyleGAN v1
schedule) are the built-ins.
"""
