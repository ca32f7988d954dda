"""Every recipe parses with the installed command, names known plugins and resolves its links."""
import subprocess
from pathlib import Path

import pytest
import yaml

from lightning_stylegan import registry

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").rglob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_parses(recipe):
    result = subprocess.run(["lightning-stylegan", "fit", "--config", str(recipe), "--print_config"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert "resolution" not in config["model"]  # linked from data.resolution, never set twice
    assert config["model"]["generator"]["normalization"] in registry.names("normalization")
    assert config["model"]["discriminator"]["topology"] in registry.names("discriminator")
    assert {"r1", "path_length", "samples", "checkpoints"} <= set(config)
