"""``lightning-stylegan analyze``: the experiments of the circular-artifact paper
(000_2d004fc061d5976e.txt) and the rare-neuron paper (004_738a47e1aec6d700.txt) on any generator.

    lightning-stylegan analyze layers        --ckpt G.pt
    lightning-stylegan analyze features      --ckpt G.pt --seed 3            (000 Figures 3, 4)
    lightning-stylegan analyze amplification [--ckpt G.pt --seed 3]          (000 Eq. 2)
    lightning-stylegan analyze rates         --ckpt G.pt --num 30000         (004 Eq. 1)
    lightning-stylegan analyze ablate        --ckpt G.pt --seeds 0-7 --rates out/rates.npz   (004 Algorithm 1, Table 1)
    lightning-stylegan analyze detect        --ckpt G.pt --num 5000 --top 64 --data real/    (004 Table 2)
    lightning-stylegan analyze units         --ckpt G.pt --seed 3 --layer 2 --unit auto     (000 Figures 6, 7, 9, 10)

Layers are numbered as in the papers (0 = the first 4x4 conv; `analyze layers` lists them). Every
subcommand writes PNG figures and JSON into --outdir; --tensorboard also logs them to
<outdir>/tensorboard. Noise is 'const' by default, so a seed always gives the same image.

Every subcommand reads the style layers of a generator and maps seeds to W: a generator without a W
space (``networks.has_w_space``) is refused up front with one line (``amplification`` without
--ckpt, the synthetic part, needs no generator).
"""
from __future__ import annotations

import argparse
import sys

import torch

from ..network_files import NetworkFileError, load_generator
from ..networks import require_w_space
from ..tools.generate import parse_range, range_arg
from . import ablation, amplification, detection, feature_maps, units
from .activation_rates import DEFAULT_NUM, DEFAULT_RATE, ActivationRates, activation_rates
from .figures import as_rgb, grid, heat_map, line_plot, mask_image, signed_map
from .latents import seed_ws
from .layers import find_layer, parse_layers, synthesis_layers
from .outputs import Outputs

SYNTHETIC_ALPHAS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
# Eq. 2's assumptions hold (mu2, sigma1, sigma2 << mu1), and a map where they do not (mu2 ~ mu1 / 2).
WITHIN = dict(mu1=10.0, mu2=0.1, sigma1=0.5, sigma2=0.05)
OUTSIDE = dict(mu1=10.0, mu2=5.0, sigma1=0.5, sigma2=2.0)


def _common(parser: argparse.ArgumentParser, ckpt_required: bool = True) -> None:
    parser.add_argument("--ckpt", required=ckpt_required, help="checkpoint (.ckpt) or exported generator (.pt)")
    parser.add_argument("--outdir", required=True, help="folder for the PNG figures and JSON")
    parser.add_argument("--tensorboard", action="store_true", help="also log figures and scalars to <outdir>/tensorboard")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32, help="latents per forward pass")
    parser.add_argument("--truncation", type=float, default=1.0, help="truncation psi (the papers use 1)")
    parser.add_argument("--noise-mode", default="const", choices=["const", "random", "none"])
    parser.add_argument("--class", dest="class_idx", type=int, help="class of a conditional generator "
                                                                    "(default: drawn from each seed)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-stylegan analyze", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("layers", help="list the synthesis layers with their indices")
    p.add_argument("--ckpt", required=True)

    p = sub.add_parser("features", help="feature maps, pixel magnitude and artifact region (000 Figs. 3-4)")
    _common(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", default="all", help="indices, names or resolutions, e.g. 0,1,3 or 16x16")
    p.add_argument("--point", choices=["auto", "output", "activation", "normalized"], default="auto",
                   help="tap point; auto = after the normalization where there is one (Figure 3), else output")
    p.add_argument("--factor", type=float, default=feature_maps.ARTIFACT_FACTOR,
                   help="artifact region: magnitude above factor x the median (10: 'one order higher')")
    p.add_argument("--channels", type=int, default=16, help="feature maps shown per layer")

    p = sub.add_parser("amplification", help="IN amplification of a small region vs Eq. 2 (000)")
    _common(p, ckpt_required=False)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", default="all")
    p.add_argument("--factor", type=float, default=feature_maps.ARTIFACT_FACTOR)
    p.add_argument("--alpha", type=float, help="region fraction for every layer (default: the detected region's)")
    p.add_argument("--size", type=int, default=64, help="side of the synthetic maps")

    p = sub.add_parser("rates", help="activation rate of every neuron (004 Eq. 1)")
    _common(p)
    p.add_argument("--num", type=int, default=DEFAULT_NUM, help="latents (the paper: 30000)")
    p.add_argument("--seed", type=int, default=0, help="first seed of the latents")
    p.add_argument("--layers", default="all")

    p = sub.add_parser("ablate", help="Sequential Ablation of LR-neurons (004 Algorithm 1) with HR/random ablation")
    _common(p)
    p.add_argument("--seeds", type=range_arg, default=parse_range("0-3"))
    p.add_argument("--rate", type=float, default=DEFAULT_RATE, help="R: LR-neurons have rate <= R")
    p.add_argument("--layers", default=ablation.DEFAULT_LAYERS, help="M, the layers to ablate")
    p.add_argument("--rates", help="rates.npz of `analyze rates` (default: computed here from --num latents)")
    p.add_argument("--num", type=int, default=1000, help="latents for the rates when --rates is not given")
    p.add_argument("--random-fraction", type=float,
                   help="random ablation of this fraction of activated neurons (default: as many as the LR ablation)")

    p = sub.add_parser("detect", help="rank samples by activated LR-neurons (004 Section 4.1, Table 2)")
    _common(p)
    p.add_argument("--num", type=int, default=5000, help="samples to rank (seeds --seed .. --seed + num - 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=64, help="K: size of the top and bottom groups")
    p.add_argument("--rate", type=float, default=DEFAULT_RATE)
    p.add_argument("--layers", default=ablation.DEFAULT_LAYERS, help="the early layers whose LR-neurons count")
    p.add_argument("--rates", help="rates.npz of `analyze rates` (default: computed on the ranked samples)")
    p.add_argument("--data", help="real images (folder, zip, 'fashion-mnist') for precision, recall, realism")
    p.add_argument("--max-real", type=int, default=10000, help="real images used (the paper: 10K)")
    p.add_argument("--extractor", default="vgg16", help="feature-extractor plugin (vgg16 as for precision/recall)")
    p.add_argument("--feature-weights", help="local weights file of the feature extractor")
    p.add_argument("--cache-dir", help="cache of real-image features")
    p.add_argument("--grid", type=int, default=64, help="at most this many images in each grid")

    p = sub.add_parser("units", help="GANDissect-style unit ablation (000 Figures 6, 7, 9, 10)")
    _common(p)
    p.add_argument("--seeds", "--seed", dest="seeds", type=range_arg, default=parse_range("0"))
    p.add_argument("--layer", required=True, help="layer index or name")
    p.add_argument("--unit", default="auto", help="comma-separated channels, or auto: the strongest in the "
                                                  "artifact region of each seed")
    p.add_argument("--keep-only", action="store_true", help="ablate all units but --unit (Figure 10)")
    p.add_argument("--iterate", type=int, default=0, help="ablate the strongest unit this many times in turn (Figure 9)")
    p.add_argument("--point", choices=["output", "activation", "normalized"], default="output")
    p.add_argument("--factor", type=float, default=feature_maps.ARTIFACT_FACTOR)
    return parser


# --------------------------------------------------------------------------------------------- runs


def run_layers(G, args) -> int:
    for layer in synthesis_layers(G):
        print(f"{layer.describe()}  points: {', '.join(layer.points)}")
    return 0


def run_features(G, args, out: Outputs) -> int:
    layers = parse_layers(G, args.layers)
    point = None if args.point == "auto" else args.point
    ws = seed_ws(G, [args.seed], args.class_idx, args.truncation, args.device)
    image, results = feature_maps.layer_magnitudes(G, ws, layers, point, args.factor, args.noise_mode)
    out.image("image", as_rgb(image)[0])
    records = []
    for result in results:
        i = result.layer.index
        shown = feature_maps.strongest_channels(result, args.channels)
        scale = float(result.fmap[shown].abs().max()) or 1.0
        out.image(f"layer{i:02d}_channels", grid([signed_map(result.fmap[c], scale) for c in shown]))
        out.image(f"layer{i:02d}_magnitude", grid([heat_map(result.magnitude)]))
        out.image(f"layer{i:02d}_region", grid([mask_image(result.region)]))
        record = result.summary() | {"shown_channels": shown}
        records.append(record)
        out.scalar("features/magnitude_ratio", record["magnitude_ratio"], i)
        out.scalar("features/region_fraction", record["region_fraction"], i)
        out.scalar("features/peak_over_median", record["peak_over_median"], i)
        ratio = record["magnitude_ratio"]
        print(f"layer {record['layer']:2d} {record['name']:24s} region {record['region_pixels']:5d} px  "
              f"ratio {'-' if ratio is None else f'{ratio:.2f}'}  peak/median {record['peak_over_median'] or 0:.2f}")
    out.json("features", {"seed": args.seed, "factor": args.factor, "noise_mode": args.noise_mode,
                          "magnitude": "mean over channels of |x|", "layers": records})
    return 0


def run_amplification(G, args, out: Outputs) -> int:
    sweeps = {name: amplification.synthetic_sweep(SYNTHETIC_ALPHAS, args.size, **params)
              for name, params in [("within_assumptions", WITHIN), ("outside_assumptions", OUTSIDE)]}
    estimate = [amplification.amplification_estimate(a) for a in SYNTHETIC_ALPHAS]
    out.image("amplification_synthetic", line_plot(
        [("sqrt((1-a)/a)  (Eq. 2)", SYNTHETIC_ALPHAS, estimate)]
        + [(f"measured, {name}", SYNTHETIC_ALPHAS, [row["measured"] for row in rows]) for name, rows in sweeps.items()],
        "IN amplification of a region of fraction alpha", "alpha", "mean of S1 after IN"))
    for name, rows in sweeps.items():
        for step, row in enumerate(rows):
            out.scalar(f"amplification/{name}_measured", row["measured"], step)
            print(f"{name:20s} alpha {row['alpha']:.3f}  measured {row['measured']:7.3f}  "
                  f"exact {row['exact']:7.3f}  estimate {row['estimate']:7.3f}")
    record = {"assumptions": f"alpha <= 0.5, |mu2|, sigma1, sigma2 << mu1 (checked as < "
                             f"{amplification.ASSUMPTION_RATIO} mu1)",
              "synthetic": {"size": args.size, "parameters": {"within_assumptions": WITHIN,
                                                               "outside_assumptions": OUTSIDE}, **sweeps}}
    if G is not None:
        record["layers"] = _layer_amplification(G, args, out)
    out.json("amplification", record)
    return 0


def _layer_amplification(G, args, out: Outputs) -> list[dict]:
    layers = parse_layers(G, args.layers)
    ws = seed_ws(G, [args.seed], args.class_idx, args.truncation, args.device)
    _, results = feature_maps.layer_magnitudes(G, ws, layers, "activation", args.factor, args.noise_mode)
    rows = []
    for result in results:
        alpha = args.alpha or float(result.region.float().mean())
        norm = getattr(result.layer.module, "norm", None) if "normalized" in result.layer.points else None
        row = {"layer": result.layer.index, "name": result.layer.name, "resolution": result.layer.resolution,
               "normalization": type(norm).__name__ if norm is not None else None,
               "alpha_source": "--alpha" if args.alpha else "detected region"}
        if 0 < alpha <= 0.5:
            row |= amplification.layer_amplification(result.fmap, alpha)
        else:
            row |= {"alpha": alpha, "skipped": "no artifact region detected (lower --factor or give --alpha)"
                    if alpha == 0 else "region larger than half the map (Eq. 2 needs alpha <= 0.5)"}
        rows.append(row)
        out.scalar("amplification/layer_measured_median", row.get("measured_median"), row["layer"])
        out.scalar("amplification/layer_estimate", row.get("estimate"), row["layer"])
    measured = [r for r in rows if r.get("measured_median") is not None]
    if measured:
        xs = [r["layer"] for r in measured]
        out.image("amplification_layers", line_plot(
            [("sqrt((1-a)/a)", xs, [r["estimate"] for r in measured]),
             ("measured (median over channels)", xs, [r["measured_median"] for r in measured])],
            f"IN of |activation| per layer, seed {args.seed}", "layer", "mean of S1 after IN"))
    return rows


def _rates(G, args) -> ActivationRates:
    if args.rates:
        return ActivationRates.load(args.rates)
    num = args.num
    print(f"computing activation rates over {num} latents (pass --rates for precomputed ones)")
    seed = args.seed if args.command == "detect" else 0  # detect: the rates of the ranked samples
    return activation_rates(G, num, parse_layers(G, args.layers), args.batch, seed,
                            args.truncation, args.noise_mode, args.class_idx, args.device)


def run_rates(G, args, out: Outputs) -> int:
    layers = parse_layers(G, args.layers)
    rates = activation_rates(G, args.num, layers, args.batch, args.seed, args.truncation, args.noise_mode,
                             args.class_idx, args.device, progress=True)
    path = rates.save(out.outdir / "rates.npz")
    out.written += [path, path.with_suffix(".json")]
    thresholds = [t / 20 for t in range(21)]
    out.image("rates_cdf", line_plot(
        [(f"layer {i}", thresholds, [float((rates.rate(i) <= t).double().mean()) for t in thresholds])
         for i in sorted(rates.counts)[:4]],
        "fraction of neurons with rate <= R (first 4 layers)", "R", "fraction"))
    for i in sorted(rates.counts):
        out.image(f"rates_layer{i:02d}", grid([heat_map(rates.rate(i).mean(dim=0), 1.0)]))
        low = float(rates.low_rate(i, DEFAULT_RATE).double().mean())
        out.scalar("rates/mean_rate", float(rates.rate(i).mean()), i)
        out.scalar("rates/low_rate_fraction", low, i)
        print(f"layer {i:2d} {rates.names[i]:24s} mean rate {float(rates.rate(i).mean()):.3f}  "
              f"LR (<= {DEFAULT_RATE}) {low:.3f}")
    return 0


def run_ablate(G, args, out: Outputs) -> int:
    layers = parse_layers(G, args.layers)
    rates = _rates(G, args)
    batches = [args.seeds[i:i + args.batch] for i in range(0, len(args.seeds), args.batch)]
    originals, heat_parts, parts = [], [], {mode: [] for mode in ablation.MODES}
    for seeds in batches:
        ws = seed_ws(G, seeds, args.class_idx, args.truncation, args.device)
        images, heat = ablation.low_rate_heatmaps(G, ws, rates, layers, args.rate, args.noise_mode)
        originals.append(images)
        heat_parts.append(heat)
        for mode in ablation.MODES:
            parts[mode].append(ablation.sequential_ablation(G, ws, rates, layers, args.rate, mode,
                                                            args.random_fraction, seed=seeds[0],
                                                            noise_mode=args.noise_mode))
    original = torch.cat(originals)
    heat_before = {i: torch.cat([heat[i] for heat in heat_parts]) for i in heat_parts[0]}
    results = {mode: ablation.concat(found) for mode, found in parts.items()}
    columns = ["original", *ablation.MODES]
    images = [as_rgb(original)] + [as_rgb(results[mode].images) for mode in ablation.MODES]
    out.image("ablation_grid", grid([images[col][row] for row in range(len(args.seeds))
                                     for col in range(len(columns))], columns=len(columns)))
    records = []
    for row, seed in enumerate(args.seeds):
        out.image(f"seed{seed}_ablation", grid([images[col][row] for col in range(len(columns))], columns=len(columns)))
        maps = ([heat_before[layer.index][row] for layer in layers]
                + [results["low"].low_rate_heatmaps[layer.index][row] for layer in layers])
        vmax = max(float(m.max()) for m in maps) or 1.0
        out.image(f"seed{seed}_lr_heatmaps", grid([heat_map(m, vmax) for m in maps], columns=len(layers)))
        record = {"seed": seed}
        for mode, result in results.items():
            change = float((result.images[row] - original[row]).abs().mean())
            record[mode] = {"image_change": change,
                            "activated": {str(i): int(v[row]) for i, v in result.activated.items()},
                            "zeroed": {str(i): int(v[row]) for i, v in result.zeroed.items()}}
            out.scalar(f"ablate/{mode}_image_change", change, seed)
        records.append(record)
        print(f"seed {seed}: mean |change| " + "  ".join(f"{m} {record[m]['image_change']:.4f}" for m in ablation.MODES))
    out.json("ablation", {"rate": args.rate, "layers": [layer.index for layer in layers],
                          "rates_num": rates.num, "columns": columns, "random_fraction": args.random_fraction,
                          "heatmaps": "rows: LR heat maps before ablation; after ablating the earlier layers",
                          "seeds": records})
    return 0


def run_detect(G, args, out: Outputs) -> int:
    layers = parse_layers(G, args.layers)
    if not 1 <= args.top <= args.num // 2:
        raise ValueError(f"--top must be between 1 and --num / 2 = {args.num // 2}, got {args.top}")
    reals = _real_features(G, args) if args.data else None  # first: a missing extractor fails early
    rates = _rates(G, args)
    seeds, counts = detection.count_low_rate_activations(
        G, rates, layers, args.num, args.rate, args.batch, args.seed, args.truncation, args.noise_mode,
        args.class_idx, args.device)
    order = detection.rank(counts)
    positions = {"top": order[:args.top].tolist(), "bottom": order[-args.top:].tolist()}
    groups = {name: [seeds[i] for i in where] for name, where in positions.items()}
    images = {name: detection.seed_images(G, group, args.batch, args.truncation, args.noise_mode, args.class_idx,
                                          args.device) for name, group in groups.items()}
    for name, group_images in images.items():
        out.image(f"detect_{name}", grid(list(as_rgb(group_images)[:args.grid]), size=0))
    low, high = float(counts.min()), float(counts.max()) + 1
    bins = torch.histc(counts.double(), bins=20, min=low, max=high)
    centers = [low + (k + 0.5) * (high - low) / 20 for k in range(20)]
    out.image("detect_histogram", line_plot([("samples", centers, bins.tolist())],
                                            "activated LR-neurons per sample", "count", "samples"))
    record = {"rate": args.rate, "layers": [layer.index for layer in layers], "num": args.num,
              "rates_num": rates.num, "top": args.top,
              "count_mean": float(counts.double().mean()), "count_std": float(counts.double().std()),
              "groups": {name: {"seeds": groups[name], "counts": counts[where].tolist()}
                         for name, where in positions.items()}}
    if reals is not None:
        extractor, real = reals
        record["scores"] = {name: detection.group_scores(real, detection.image_features(
            extractor, group_images, args.batch, args.device)) for name, group_images in images.items()}
        for name, scores in record["scores"].items():
            for key in ("precision", "recall", "realism_mean"):
                out.scalar(f"detect/{name}_{key}", scores[key])
            print(f"{name:6s} precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  "
                  f"realism {scores['realism_mean']:.4f} +- {scores['realism_std']:.4f}")
    else:
        print("no --data: ranking and grids only (give real images for precision, recall and realism)")
    out.json("detect", record)
    return 0


def _real_features(G, args):
    """The extractor and the features of the real images (--data) for precision, recall, realism."""
    from ..data.dataset import ImageDataset
    from ..metrics.feature_stats import dataset_stats
    from ..metrics.features import load_extractor

    extractor = load_extractor(args.extractor, args.feature_weights, args.device)
    dataset = ImageDataset(args.data, G.img_resolution, G.img_channels)
    real = dataset_stats(dataset, extractor, max_images=args.max_real, batch_size=args.batch,
                         cache_dir=args.cache_dir, device=args.device, keep_features=True,
                         progress=False).features()
    return extractor, real


def run_units(G, args, out: Outputs) -> int:
    layer = find_layer(G, args.layer)
    given = [u.strip() for u in args.unit.split(",")] if args.unit != "auto" else []
    if not all(u.isdigit() for u in given):
        raise ValueError(f"--unit must be 'auto' or comma-separated channel numbers, got {args.unit!r}")
    ws = seed_ws(G, args.seeds, args.class_idx, args.truncation, args.device)
    records, tiles = [], []
    for row, seed in enumerate(args.seeds):
        w = ws[row:row + 1]
        image, (result,) = feature_maps.layer_magnitudes(G, w, [layer], args.point, args.factor, args.noise_mode)
        chosen = [int(u) for u in given] or [units.strongest_unit(result.fmap, args.factor)]
        after = units.ablate_units(G, w, layer, chosen, args.keep_only, args.point, args.noise_mode)
        diff = (after - image).abs().mean(dim=1)[0]
        row_tiles = [as_rgb(image)[0], as_rgb(after)[0], heat_map(diff)]
        steps = units.iterative_unit_ablation(G, w, layer, args.iterate, args.factor, args.point,
                                              args.noise_mode) if args.iterate else []
        row_tiles += [as_rgb(step.images)[0] for step in steps]
        out.image(f"seed{seed}_units", grid(row_tiles, columns=len(row_tiles)))
        tiles += [row_tiles]
        records.append({"seed": seed, "units": chosen, "keep_only": args.keep_only,
                        "image_change": float(diff.mean()), "artifact_region_pixels": int(result.region.sum()),
                        "iterated_units": steps[-1].units if steps else []})
        out.scalar("units/image_change", float(diff.mean()), seed)
        print(f"seed {seed}: ablated {'all but ' if args.keep_only else ''}units {chosen} of {layer.name}; "
              f"mean |change| {float(diff.mean()):.4f}")
    if len(tiles) > 1:
        out.image("units_grid", grid([tile for row in tiles for tile in row[:3]], columns=3))
    out.json("units", {"layer": layer.index, "name": layer.name, "point": args.point,
                       "columns": ["before", "after", "|difference|"] + [f"iterate {k + 1}" for k in range(args.iterate)],
                       "seeds": records})
    return 0


RUNS = {"features": run_features, "amplification": run_amplification, "rates": run_rates,
        "ablate": run_ablate, "detect": run_detect, "units": run_units}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        G = None
        if args.ckpt:
            G = load_generator(args.ckpt).to(getattr(args, "device", "cpu"))
            require_w_space(G, f"`analyze {args.command}` reads its style layers (synthesis layers driven by ws); "
                               "it has none" + (" (leave --ckpt out for the synthetic part)"
                                                if args.command == "amplification" else ""))
        if args.command == "layers":
            return run_layers(G, args)
        with Outputs(args.outdir, args.tensorboard) as out:
            code = RUNS[args.command](G, args, out)
        print(f"wrote {len(out.written)} files to {out.outdir}")
        return code
    except (ValueError, FileNotFoundError, NetworkFileError, RuntimeError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
