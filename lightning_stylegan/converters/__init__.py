"""Converter plugins (entry-point group ``lightning_stylegan.converters``): readers of other projects'
network pickles for ``lightning-stylegan convert``. ``base`` is the interface, ``stylegan2`` the
built-in reader of NVlabs stylegan2-ada-pytorch pickles."""
