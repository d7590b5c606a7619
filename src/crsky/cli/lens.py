"""``crsky lens``: build Galactic lens parts from backtracking shards and write the lens folder.

crsky lens part  --shards S... --field F --nside N --bin B --output PART.npz
crsky lens cfg   --parts PART.npz... --lens-dir DIR [--mldat] [--compress]
crsky lens plots --lens-dir DIR --deflection-png D.png --transparency-png T.png
"""

import argparse

from crsky.cli._options import non_negative_int, positive_int
from crsky.io import prepare_folder, prepare_output
from crsky.lens.build import build_part, finalize_lens, stats_path, write_part
from crsky.lens.plots import plot_deflection, plot_transparency

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lens",
        help="build Galactic lenses",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    steps = p.add_subparsers(dest="step", required=True, metavar="STEP")

    part = steps.add_parser("part", help="row-normalised lens part of one rigidity bin")
    part.add_argument("--shards", nargs="+", required=True, help="all shard files of the bin")
    part.add_argument("--field", required=True, help="field model the shards must come from")
    part.add_argument("--nside", type=positive_int, required=True, help="lens HEALPix nside (RING)")
    part.add_argument(
        "--bin", type=non_negative_int, default=None, help="rigidity bin the shards must be"
    )
    part.add_argument(
        "--output", required=True, help="part file (.npz); statistics go to the .json beside it"
    )
    part.set_defaults(run=run_part)

    cfg = steps.add_parser("cfg", help="global normalisation, lens files and lens.cfg")
    cfg.add_argument("--parts", nargs="+", required=True, help="per-bin part files (.npz)")
    cfg.add_argument("--lens-dir", required=True, help="lens folder to write")
    cfg.add_argument(
        "--mldat",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also write CRPropa .mldat parts and lens_crpropa.cfg",
    )
    cfg.add_argument("--compress", action="store_true", help="deflate the .npz members")
    cfg.set_defaults(run=run_cfg)

    plots = steps.add_parser("plots", help="deflection and transparency plots of a lens")
    plots.add_argument("--lens-dir", required=True, help="a complete lens folder")
    plots.add_argument("--deflection-png", required=True)
    plots.add_argument("--transparency-png", required=True)
    plots.add_argument("--maps", type=positive_int, default=4, help="number of transparency maps")
    plots.set_defaults(run=run_plots)


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
    plot_deflection(args.lens_dir, args.deflection_png)
    plot_transparency(args.lens_dir, args.transparency_png, args.maps)
