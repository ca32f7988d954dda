"""Progressive-growing schedule plugins (entry-point group ``lightning_stylegan.growth``).

``base`` holds the interface; ``none`` (fixed resolution) is the built-in of this release.
"""
