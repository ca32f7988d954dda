"""Throwaway distributions for tests: ``*.dist-info`` folders (what pip leaves behind) whose entry
points the registry finds exactly as it finds those of a pip-installed plugin."""
from __future__ import annotations

import textwrap
from pathlib import Path


def write_distribution(site: Path, dist: str, entries: dict[str, dict[str, str]],
                       modules: dict[str, str] | None = None, version: str = "1.0") -> Path:
    """Write an installed-looking distribution into the folder ``site``."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = []
    for group, names in entries.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in names.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site
