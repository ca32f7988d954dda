"""The ``lightning-stylegan`` command.

``lightning-stylegan plugins [--kind KIND]`` lists every installed plugin: kind, name,
distribution, version and a one-line description (or why it is broken).
"""
from __future__ import annotations

import argparse
import sys

from . import __version__, registry


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def plugins_command(kind: str | None) -> int:
    listings = registry.describe(kind)
    rows = [["KIND", "NAME", "DISTRIBUTION", "VERSION", "DESCRIPTION"]]
    for item in listings:
        status = f"BROKEN: {item.error}" if item.error else item.description
        rows.append([item.spec.kind, item.spec.name, item.spec.distribution, item.spec.version, status])
    print(_table(rows))
    broken = sum(item.error is not None for item in listings)
    if broken:
        print(f"\n{broken} plugin(s) cannot be used; the others work.", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-stylegan",
        description="StyleGAN-family GANs on PyTorch Lightning, every variant a plugin.")
    parser.add_argument("--version", action="version", version=f"lightning-stylegan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plugins = commands.add_parser("plugins", help="list the installed plugins of every kind")
    plugins.add_argument("--kind", choices=list(registry.GROUPS), help="list only this kind")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "plugins":
            return plugins_command(args.kind)
    except registry.PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
