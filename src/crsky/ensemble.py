"""The field ensemble of a workflow: which lenses it builds and what each is called.

Config (workflow/schemas/config.schema.yaml)::

    field: {model: uf23, options: {variant: expX}}          # one lens
    fields:                                                 # several lenses
      - {model: jf12}
      - {model: uf23, options: {variant: expX}}
      - {model: jf12, options: {turbulence: {seed: 3}}, name: jf12-turb3}

``field:`` is shorthand for a one-entry ``fields:`` list. When ``fields:`` is given it is the
list of lenses and ``field:`` is not used (Snakemake merges a ``--configfile`` over
config/config.yaml key by key, so the default's ``field:`` is always present). Each entry is
one lens, built into ``results/lens/<name>/`` from ``results/backtrack/<name>/``; every lens of
a workflow shares ``lens.nside``, ``rigidity_bins`` and the ``backtrack`` settings, so the
lenses can be mixed in one skymap dataset.

A lens is named after its model and the options that differ from the model's defaults
(:func:`derived_lens_name`): ``jf12``, ``uf23-expX``, ``pt11-bss``, ``pt11-nohalo``,
``jf12-disk+x_field``, ``jf12-turbulence``, ``jf12-turbulence-seed3``; ``name:`` sets it
explicitly. Names hold letters, digits and ``_ . + -`` (``LENS_NAME_PATTERN``) and are unique.
"""

import re
from dataclasses import dataclass, field

from crsky.errors import ConfigError, did_you_mean

__all__ = [
    "LENS_NAME_MAX_LENGTH",
    "LENS_NAME_PATTERN",
    "LensField",
    "check_lens_name",
    "derived_lens_name",
    "lens_fields",
    "resolve_dataset_lenses",
]

LENS_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
LENS_NAME_MAX_LENGTH = 64


@dataclass(frozen=True)
class LensField:
    """One lens of the workflow: its folder ``name``, the field ``model`` and its ``options``
    (as given in the config), and ``key``, the config key that error messages name
    (``field`` or ``fields[i]``)."""

    name: str
    model: str
    options: dict = field(default_factory=dict)
    key: str = "field"


def check_lens_name(name, key: str) -> str:
    """``name`` if it is a valid lens folder name, else ConfigError naming ``key``."""
    if (
        not isinstance(name, str)
        or not re.match(LENS_NAME_PATTERN, name)
        or len(name) > LENS_NAME_MAX_LENGTH
    ):
        raise ConfigError(
            f"{key} = {name!r}: a lens name must match {LENS_NAME_PATTERN} (letters, digits and "
            f"_ . + -, starting with a letter or digit) and have at most {LENS_NAME_MAX_LENGTH} "
            "characters"
        )
    return name


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _token(key: str, value, reference) -> str:
    """Name part of option ``key`` with the built model's ``value`` (``reference``: the value
    of a dict-valued option at its own defaults)."""
    if isinstance(value, bool):
        return key if value else f"no{key}"
    if value is None:
        return f"no{key}"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return "+".join(value)
        return key + "+".join(_number(v) for v in value)
    if isinstance(value, dict):
        changed = [
            f"{sub}{_number(v)}" for sub, v in value.items() if (reference or {}).get(sub) != v
        ]
        return "-".join([key, *changed])
    return f"{key}{_number(value)}"


def derived_lens_name(model: str, options: dict, key: str = "field") -> str:
    """The default lens name of field ``model`` with ``options``: the model, then one part per
    option whose value differs from the model's default (in the order the model lists its
    options). ConfigError naming ``<key>.options.<option>`` for a bad option."""
    from crsky.fields import check_field_options

    built = _build(model, options, key).options
    default = check_field_options(model, {}).options
    parts = [model]
    for option, value in built.items():
        if default.get(option) == value:
            continue
        reference = None
        if isinstance(value, dict):
            reference = check_field_options(model, {option: True}).options[option]
        parts.append(_token(option, value, reference))
    return "-".join(parts)


def _build(model: str, options: dict, key: str):
    """The field model (cheap: no tracing); errors name ``<key>.model`` / ``<key>.options``."""
    from crsky.fields import check_field_options, field_entry

    field_entry(model, f"{key}.model")
    try:
        return check_field_options(model, options, f"{key}.options")
    except ConfigError as err:
        text = str(err)
        if key != "field" and text.startswith("field."):  # the models' messages say field.*
            text = key + text[len("field") :]
        raise ConfigError(text) from None


def _entry(spec: dict, key: str) -> LensField:
    model, options = spec.get("model", "jf12"), spec.get("options") or {}
    _build(model, options, key)
    given = spec.get("name")
    if given is None:
        name = derived_lens_name(model, options, key)
        check_lens_name(name, f"{key}.name (derived)")
    else:
        name = check_lens_name(given, f"{key}.name")
    return LensField(name, model, dict(options), key)


def lens_fields(config: dict) -> dict[str, LensField]:
    """{lens name: LensField} of the workflow config, in config order: ``fields`` when given,
    else the one ``field``. ConfigError naming the key for a bad model, option or name, or a
    name used twice."""
    given = config.get("fields")
    if given is None:
        entries = [_entry(config.get("field") or {}, "field")]
    else:
        if not isinstance(given, list) or not given:
            raise ConfigError(f"fields = {given!r}: expected a non-empty list of field entries")
        entries = [_entry(spec, f"fields[{i}]") for i, spec in enumerate(given)]
    out: dict[str, LensField] = {}
    for entry in entries:
        if entry.name in out:
            raise ConfigError(
                f"{entry.key}.name: lens name {entry.name!r} is also the name of "
                f"{out[entry.name].key}; lens names must be unique (set 'name' on one of them)"
            )
        out[entry.name] = entry
    return out


def resolve_dataset_lenses(dataset_key: str, given, lenses: dict) -> list[str]:
    """The lens names a lens-mode dataset uses: ``given`` (its ``deflection.lens``: a name, a
    list of names to mix, or None for the workflow's only lens), checked against ``lenses``
    (:func:`lens_fields`). ConfigError naming ``<dataset_key>.deflection.lens``."""
    key = f"{dataset_key}.deflection.lens"
    if given is None:
        if len(lenses) != 1:
            raise ConfigError(
                f"{key}: the workflow builds {len(lenses)} lenses {list(lenses)}; name the one "
                "this dataset uses, or a list of them to mix"
            )
        return list(lenses)
    names = [given] if isinstance(given, str) else list(given)
    for name in names:
        if name not in lenses:
            raise ConfigError(
                f"{key}: {name!r} is not a lens this workflow builds "
                f"({list(lenses)}){did_you_mean(name, list(lenses))}"
            )
    return names
