"""``lightning-stylegan explore``: a local web page that draws the images of generators as the user
moves its controls (``render``), served by a Starlette app with a render worker (``server``)."""
