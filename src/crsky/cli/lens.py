"""crsky lens: build a Galactic lens from backtracking shards and write the lens folder."""

import argparse

from crsky.cli._options import HelpFormatter, add_stage, non_negative_int, output_path, positive_int
from crsky.io import prepare_folder, prepare_output
from crsky.lens.build import build_part, finalize_lens, stats_path, write_part
from crsky.lens.plots import plot_deflection, plot_deflection_maps, plot_magnification

__all__ = ["PARSERS"]

_DESCRIPTION = """\
Build a Galactic lens in three steps (the workflow runs them as jobs), and overlay several:

  crsky lens part  --shards S... --field F --nside N --bin B --output PART.npz
  crsky lens cfg   --parts PART.npz... --lens-dir DIR [--no-mldat] [--compress]
  crsky lens plots --lens-dir DIR --deflection-png D.png --transparency-png T.png
                   --deflection-maps-png M.png
  crsky lens compare --lens-dirs DIR... --deflection-png D.png"""


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = add_stage(sub, name, help, _DESCRIPTION)
    steps = p.add_subparsers(
        dest="step", required=True, metavar="STEP", help="crsky lens STEP --help lists its options"
    )

    def step(step_name: str, step_help: str) -> argparse.ArgumentParser:
        return steps.add_parser(
            step_name, help=step_help, description=step_help, formatter_class=HelpFormatter
        )

    part = step("part", "row-normalised lens part of one rigidity bin from its shards")
    part.add_argument("--shards", nargs="+", required=True, help="all shard files of the bin")
    part.add_argument("--field", required=True, help="field model the shards must come from")
    part.add_argument("--nside", type=positive_int, required=True, help="lens HEALPix nside (RING)")
    part.add_argument(
        "--bin",
        type=non_negative_int,
        default=None,
        help="rigidity bin the shards must belong to (default: the shards' own)",
    )
    part.add_argument(
        "--output",
        type=output_path,
        required=True,
        help="part file (.npz); its statistics go to the .json beside it",
    )
    part.set_defaults(run=run_part)

    cfg = step("cfg", "global normalisation, lens files, diagnostics and lens.cfg")
    cfg.add_argument("--parts", nargs="+", required=True, help="per-bin part files (.npz)")
    cfg.add_argument("--lens-dir", type=output_path, required=True, help="lens folder to write")
    cfg.add_argument(
        "--mldat",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also write CRPropa .mldat parts and lens_crpropa.cfg",
    )
    cfg.add_argument("--compress", action="store_true", help="deflate the .npz members")
    cfg.set_defaults(run=run_cfg)

    plots = step("plots", "deflection and transparency plots of a lens folder")
    plots.add_argument("--lens-dir", required=True, help="a complete lens folder")
    plots.add_argument(
        "--deflection-png",
        type=output_path,
        required=True,
        help="figure to write: deflection against rigidity",
    )
    plots.add_argument(
        "--transparency-png",
        type=output_path,
        required=True,
        help="figure to write: magnification maps (transparency over its sky mean)",
    )
    plots.add_argument(
        "--deflection-maps-png",
        type=output_path,
        required=True,
        help="figure to write: maps of the mean deflection per observed pixel",
    )
    plots.add_argument("--maps", type=positive_int, default=4, help="rigidity bins shown as maps")
    plots.set_defaults(run=run_plots)

    compare = step("compare", "deflections of several lens folders overlaid")
    compare.add_argument("--lens-dirs", nargs="+", required=True, help="complete lens folders")
    compare.add_argument(
        "--deflection-png",
        type=output_path,
        required=True,
        help="figure to write: every lens's deflection against rigidity",
    )
    compare.set_defaults(run=run_compare)


PARSERS = {"lens": add_parser}


def run_part(args: argparse.Namespace) -> None:
    prepare_output(args.output)
    prepare_output(stats_path(args.output))
    write_part(build_part(args.shards, args.field, args.nside, args.bin), args.output)


def run_cfg(args: argparse.Namespace) -> None:
    prepare_folder(args.lens_dir)
    finalize_lens(args.parts, args.lens_dir, write_mldat_files=args.mldat, compress=args.compress)


def run_plots(args: argparse.Namespace) -> None:
    prepare_output(args.deflection_png)
    prepare_output(args.transparency_png)
    prepare_output(args.deflection_maps_png)
    plot_deflection(args.lens_dir, args.deflection_png)
    plot_magnification(args.lens_dir, args.transparency_png, args.maps)
    plot_deflection_maps(args.lens_dir, args.deflection_maps_png, args.maps)


def run_compare(args: argparse.Namespace) -> None:
    prepare_output(args.deflection_png)
    plot_deflection(args.lens_dirs, args.deflection_png)
