"""Normalization plugins (entry-point group ``lightning_stylegan.normalizations``).

``base.Normalization`` is the interface; each other module is one built-in plugin, registered in
``pyproject.toml`` and loaded by name through ``lightning_stylegan.registry``.
"""
