"""``crsky skymaps``: simulate one chunk of a skymap dataset and write its HDF5 file."""

import argparse

from crsky.cli._options import json_object, non_negative_int
from crsky.errors import ConfigError
from crsky.io import prepare_output
from crsky.sky.dataset import DatasetConfig
from crsky.sky.deflection import load_lens
from crsky.sky.simulate import run_chunk

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("skymaps", help=__doc__, description=__doc__)
    p.add_argument("--output", required=True, help="chunk file to write (.h5)")
    p.add_argument("--seed", type=non_negative_int, required=True, help="config seed")
    p.add_argument("--dataset", required=True, help="dataset name, e.g. train")
    p.add_argument(
        "--datasets",
        required=True,
        help="JSON object of all datasets, {name: {key: value}} (config skymaps.datasets); "
        "keys not given take the defaults of crsky.sky.dataset.DATASET_DEFAULTS",
    )
    p.add_argument(
        "--chunk", type=non_negative_int, required=True, help="chunk index within the dataset"
    )
    p.add_argument("--lens", default=None, help="lens folder (deflection mode 'lens')")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    prepare_output(args.output)
    datasets = json_object(args.datasets, "--datasets")
    if args.dataset not in datasets:
        raise ConfigError(
            f"unknown skymaps dataset {args.dataset!r}; configured: {sorted(datasets)}"
        )
    dataset = DatasetConfig.from_dict(args.dataset, datasets[args.dataset])
    dataset.chunk_range(args.chunk)  # a bad chunk index stops before any work
    lens = None
    if dataset.deflection_mode == "lens":
        if args.lens is None:
            raise ConfigError(f"dataset {args.dataset!r} uses deflection 'lens': pass '--lens'")
        lens = load_lens(args.lens)
    run_chunk(dataset, args.chunk, args.seed, args.output, lens=lens, lens_folder=args.lens)
