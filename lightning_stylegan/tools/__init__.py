"""Command-line tools on trained networks: generate images, project images into W, convert official networks."""
