"""``lightning-stylegan explore``: serve the explorer page for the named generators.

    lightning-stylegan explore --ckpt A.ckpt [--ckpt B.ckpt ...] [--rates A=rates.npz]
        [--projected-w out/projected_w.npz] [--port 8765] [--host 127.0.0.1] [--device cpu]

Needs the ``explore`` extra (``pip install "lightning-stylegan[explore]"``: Starlette and uvicorn).
Binds to 127.0.0.1 by default (forward the port over SSH: ``ssh -L 8765:127.0.0.1:8765 host``);
``--host 0.0.0.0`` serves every network interface, with a warning.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError

INSTALL = 'pip install "lightning-stylegan[explore]"'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-stylegan explore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", action="append", required=True, help="a checkpoint or exported generator; repeat "
                        "for several, drawn side by side")
    parser.add_argument("--rates", action="append", default=[], metavar="NAME=FILE",
                        help="activation rates of a network (lightning-stylegan analyze rates), for its neuron view")
    parser.add_argument("--projected-w", action="append", default=[], help="a projected_w.npz to offer as a latent")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    return parser


def load(args) -> tuple[list, dict]:
    """The networks (named by their file stem, made unique) and the projected latents."""
    import numpy as np
    import torch

    from ..analysis.activation_rates import ActivationRates
    from ..network_files import load_generator
    from .render import network

    names = _names([Path(path) for path in args.ckpt])
    rates = {}
    for item in args.rates:
        name, _, path = item.partition("=")
        if name not in names.values() or not path:
            raise UsageError(f"--rates {item!r}: write NAME=FILE with NAME one of {sorted(names.values())}")
        rates[name] = ActivationRates.load(path)
    networks = [network(name, load_generator(path).to(args.device), rates.get(name)) for path, name in names.items()]
    projected = {}
    for path in map(Path, args.projected_w):
        with np.load(path, allow_pickle=False) as data:
            if "w" not in data:
                raise UsageError(f"--projected-w {path} has no 'w' array; give a projected_w.npz of `project`")
            w = torch.from_numpy(data["w"]).float()
        projected[path.stem if path.stem not in projected else str(path)] = w.reshape(-1, *w.shape[-2:])[:1].to(args.device)
    return networks, projected


def _names(paths: list[Path]) -> dict[Path, str]:
    names = {}
    for path in paths:
        name = path.stem if path.stem not in names.values() else f"{path.parent.name}/{path.stem}"
        names[path] = name
    return names


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        import uvicorn

        from .server import Explorer, app
    except ImportError as error:
        print(f"error: the explorer needs Starlette and uvicorn ({error.name} is missing): {INSTALL}", file=sys.stderr)
        return 2
    try:
        networks, projected = load(args)
    except (UsageError, ValueError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost"):
        print(f"warning: serving on {args.host}: anyone who can reach this machine can use the explorer",
              file=sys.stderr)
    print(f"explorer: http://{args.host}:{args.port}/  (over SSH: ssh -L {args.port}:127.0.0.1:{args.port} <host>, "
          f"then open http://127.0.0.1:{args.port}/)", flush=True)
    uvicorn.run(app(Explorer(networks, projected), args.host), host=args.host, port=args.port, log_level="warning")
    return 0
