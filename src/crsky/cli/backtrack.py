"""crsky backtrack: trace one shard of one rigidity bin and write its HDF5 file."""

import argparse

from crsky.backtrack import Accuracy
from crsky.backtrack.shard import ShardJob, run_shard
from crsky.binning import RigidityBins, Sharding
from crsky.cli._options import (
    add_stage,
    add_threads,
    finite_float,
    json_object,
    non_negative_int,
    output_path,
    positive_int,
)
from crsky.errors import ConfigError
from crsky.io import prepare_output

__all__ = ["PARSERS"]

_DESCRIPTION = """\
Trace the particles of one shard of one rigidity bin backwards from the Earth to the edge of
the Galaxy and write the shard (HDF5: observed and extragalactic directions, rigidities, path
lengths). Particle k of a bin lies in RING pixel k mod 12 nside^2; the workflow runs one job per
(bin, shard)."""


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = add_stage(sub, name, help, _DESCRIPTION)
    p.add_argument("--output", type=output_path, required=True, help="shard file to write (.h5)")
    p.add_argument("--seed", type=non_negative_int, required=True, help="master seed of the config")
    p.add_argument("--field", required=True, help="field model name, e.g. jf12")
    p.add_argument(
        "--field-options",
        default="{}",
        help="field options as a JSON object (config field.options)",
    )
    p.add_argument(
        "--bins",
        nargs=3,
        required=True,
        metavar=("LOG10_RMIN", "LOG10_RMAX", "N_BINS"),
        help="rigidity bins: limits in log10(R / V) and the number of bins",
    )
    p.add_argument("--bin", type=non_negative_int, required=True, help="rigidity bin index")
    p.add_argument(
        "--particles-per-bin",
        type=positive_int,
        required=True,
        help="particles of the whole bin (a multiple of 12 nside^2)",
    )
    p.add_argument("--shard-size", type=positive_int, required=True, help="particles per shard")
    p.add_argument(
        "--shard", type=non_negative_int, required=True, help="shard index within the bin"
    )
    p.add_argument(
        "--nside",
        type=positive_int,
        required=True,
        help="HEALPix nside over whose pixels observed directions are stratified",
    )
    p.add_argument(
        "--engine",
        default="builtin",
        choices=("builtin", "crpropa"),
        help="tracer: crsky's own or CRPropa's (where import crpropa works)",
    )
    p.add_argument(
        "--tolerance",
        type=finite_float,
        default=Accuracy.tolerance,
        help="largest local error of the unit direction per step (absolute)",
    )
    p.add_argument(
        "--min-step-kpc",
        type=finite_float,
        default=Accuracy.min_step_kpc,
        help="shortest step, kpc",
    )
    p.add_argument(
        "--max-step-kpc", type=finite_float, default=Accuracy.max_step_kpc, help="longest step, kpc"
    )
    p.add_argument(
        "--max-path-length-kpc",
        type=finite_float,
        default=Accuracy.max_path_length_kpc,
        help="particles still inside the Galaxy after this path are trapped, kpc",
    )
    p.add_argument(
        "--r-galaxy-kpc",
        type=finite_float,
        default=Accuracy.r_galaxy_kpc,
        help="radius of the sphere around the Galactic Centre where tracing stops, kpc",
    )
    p.add_argument(
        "--integrator",
        default=Accuracy.integrator,
        choices=("auto", "dopri5", "bs3", "dop853"),
        help="builtin engine's Runge-Kutta pair (auto: the field model's)",
    )
    add_threads(p, "numba threads (default: all cores)")
    p.set_defaults(run=run)


PARSERS = {"backtrack": add_parser}


def _bins(values: list[str]) -> RigidityBins:
    """--bins LOG10_RMIN LOG10_RMAX N_BINS: two finite numbers and an integer count."""
    try:
        lo, hi = (finite_float(v) for v in values[:2])
        n_bins = positive_int(values[2])
    except argparse.ArgumentTypeError as err:
        raise ConfigError(f"'--bins' LOG10_RMIN LOG10_RMAX N_BINS: {err}") from None
    return RigidityBins(lo, hi, n_bins)


def run(args: argparse.Namespace) -> None:
    prepare_output(args.output)
    field_options = json_object(args.field_options, "--field-options")
    job = ShardJob(
        seed=args.seed,
        field_model=args.field,
        field_options=field_options,
        bins=_bins(args.bins),
        bin_index=args.bin,
        sharding=Sharding(args.particles_per_bin, args.shard_size),
        shard_index=args.shard,
        nside=args.nside,
        accuracy=Accuracy(
            args.tolerance,
            args.min_step_kpc,
            args.max_step_kpc,
            args.max_path_length_kpc,
            args.r_galaxy_kpc,
            args.integrator,
        ),
        engine=args.engine,
    )
    run_shard(job, args.output, threads=args.threads)
