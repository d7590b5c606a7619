"""crsky skymaps: simulate one chunk of a skymap dataset and write its HDF5 file."""

import argparse
from pathlib import Path

from crsky.cli._options import add_stage, json_object, non_negative_int, output_path
from crsky.errors import ConfigError, did_you_mean

__all__ = ["PARSERS"]

_DESCRIPTION = """\
Simulate one chunk of a skymap dataset (HDF5: per map the list of its cosmic rays and labels).
By hand, name the workflow's config files and the dataset:

  crsky skymaps --config config/config.yaml --dataset test --chunk 0

writes results/skymaps/test/chunk0000.h5, the file the workflow makes (same bytes). The
workflow itself passes --seed and --datasets (JSON) instead of --config."""


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = add_stage(sub, name, help, _DESCRIPTION)
    p.add_argument(
        "--config",
        nargs="+",
        metavar="YAML",
        help="workflow config files, merged over the checkout's config/config.yaml as "
        "snakemake --configfile does; give the seed, the datasets and the lens folder",
    )
    p.add_argument("--dataset", required=True, help="dataset name, e.g. test")
    p.add_argument(
        "--chunk", type=non_negative_int, required=True, help="chunk index within the dataset"
    )
    p.add_argument(
        "--output",
        type=output_path,
        help="chunk file to write (.h5); with --config the default is the workflow's path, "
        "<results_dir>/skymaps/<dataset>/chunk<NNNN>.h5",
    )
    p.add_argument("--seed", type=non_negative_int, help="master seed (instead of --config)")
    p.add_argument(
        "--datasets",
        help="JSON object of the datasets, {name: {key: value}} (config skymaps.datasets; "
        "instead of --config); keys not given take the schema's defaults",
    )
    p.add_argument(
        "--lens",
        nargs="+",
        help="lens folder for datasets in deflection mode 'lens'; a lens mix: one folder per "
        "lens, in the order of the dataset's deflection.lens; with --config the default is "
        "<results_dir>/lens/<lens name> for each lens the dataset names",
    )
    p.set_defaults(run=run)


def _from_config(args: argparse.Namespace) -> tuple[int, dict, Path, list | None]:
    """(seed, datasets, output, lens folder) from the config files."""
    from crsky.cli._config import load_config_files

    if args.seed is not None or args.datasets is not None:
        raise ConfigError("give either '--config' or '--seed' and '--datasets', not both")
    config = load_config_files(args.config)
    datasets = config["skymaps"]["datasets"]
    results = Path(config["results_dir"])
    if args.dataset not in datasets:
        raise ConfigError(
            f"{' + '.join(args.config)} has no skymaps dataset {args.dataset!r}"
            f"{did_you_mean(args.dataset, datasets)}; configured: {', '.join(datasets)}"
        )
    output = args.output or results / "skymaps" / args.dataset / f"chunk{args.chunk:04d}.h5"
    spec = datasets[args.dataset]
    deflection = spec.get("deflection") or {}
    lens = args.lens
    if lens is None and deflection.get("mode") == "lens":
        from crsky.ensemble import lens_fields, resolve_dataset_lenses

        key = f"skymaps.datasets.{args.dataset}"
        names = resolve_dataset_lenses(key, deflection.get("lens"), lens_fields(config))
        lens = [results / "lens" / name for name in names]
        resolved = {**deflection, "lens": names[0] if len(names) == 1 else names}
        datasets = {**datasets, args.dataset: {**spec, "deflection": resolved}}  # as the workflow
    return config["seed"], datasets, output, lens


def _from_options(args: argparse.Namespace) -> tuple[int, dict, Path, list | None]:
    missing = [o for o, v in (("--seed", args.seed), ("--datasets", args.datasets)) if v is None]
    if missing or args.output is None:
        raise ConfigError(
            "name the workflow's config files with '--config' (e.g. --config config/config.yaml),"
            f" or give {' and '.join(missing or ['--output'])}"
        )
    datasets = json_object(args.datasets, "--datasets")
    if args.dataset not in datasets:
        raise ConfigError(
            f"unknown skymaps dataset {args.dataset!r}{did_you_mean(args.dataset, datasets)}; "
            f"'--datasets' has: {', '.join(datasets)}"
        )
    return args.seed, datasets, args.output, args.lens


def run(args: argparse.Namespace) -> None:
    from crsky.io import prepare_output
    from crsky.sky.dataset import DatasetConfig
    from crsky.sky.deflection import load_lens
    from crsky.sky.simulate import check_lens_mix, run_chunk

    seed, datasets, output, folders = (_from_config if args.config else _from_options)(args)
    dataset = DatasetConfig.from_dict(args.dataset, datasets[args.dataset])
    dataset.chunk_range(args.chunk)  # a bad chunk index stops before any work
    lenses = None
    if dataset.deflection_mode == "lens":
        if folders is None:
            raise ConfigError(f"dataset {args.dataset!r} uses deflection 'lens': pass '--lens'")
        names = dataset.lens_names
        if names and len(names) != len(folders):
            raise ConfigError(
                f"dataset {args.dataset!r} uses lenses {list(names)}: pass '--lens' with one "
                f"folder per lens, in that order (got {len(folders)})"
            )
        lenses = [load_lens(folder) for folder in folders]
        check_lens_mix(dataset, lenses, names or [Path(f).name for f in folders])
    else:
        folders = None
    prepare_output(output)
    run_chunk(dataset, args.chunk, seed, output, lens=lenses, lens_folder=folders)


def add_plots_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = add_stage(
        sub,
        name,
        help,
        "Read every chunk of one skymap dataset and draw its energy spectrum against the "
        "configured model, its charge fractions against the configured composition, the "
        "configured exposure with its boundary beside the mean counts per pixel; write the mean "
        "counts as a HEALPix FITS map.",
    )
    p.add_argument("--chunks", nargs="+", required=True, help="every chunk of the dataset (.h5)")
    for option, what in (
        ("--spectrum-png", "figure to write: energy spectrum"),
        ("--charges-png", "figure to write: charge fractions"),
        ("--exposure-png", "figure to write: exposure and mean counts maps"),
        ("--mean-counts-fits", "HEALPix FITS map to write: mean CRs per pixel and map (RING)"),
    ):
        p.add_argument(option, type=output_path, required=True, help=what)
    p.set_defaults(run=run_plots)


def run_plots(args: argparse.Namespace) -> None:
    from crsky.io import prepare_output
    from crsky.sky.plots import plot_dataset

    outputs = (args.spectrum_png, args.charges_png, args.exposure_png, args.mean_counts_fits)
    for path in outputs:
        prepare_output(path)
    plot_dataset(args.chunks, *outputs)


PARSERS = {"skymaps": add_parser, "dataset-plots": add_plots_parser}
