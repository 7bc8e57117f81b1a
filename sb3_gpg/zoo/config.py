"""The hyperparameter file: GPG's name in the Zoo, the packaged ``gpg.yml``, and reading a config as the Zoo does."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
from collections.abc import Mapping
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import yaml

#: The name of GPG in the Zoo's tables, its ``--algo`` value and its logs folder (``logs/gpg/``).
ALGO = "gpg"
#: The packaged hyperparameter file (``hyperparams/gpg.yml`` of the repository, ``sb3_gpg/hyperparams/`` once
#: installed).
CONFIG_FILE = "gpg.yml"


class ZooConfigError(ValueError):
    """A command line or hyperparameter entry that cannot train: raised before anything is built."""


_extracted_files: contextlib.ExitStack | None = None


def default_config_path() -> Path:
    """
    The packaged ``gpg.yml``, as a file on disk.

    Found with ``importlib.resources`` in the installed package ``sb3_gpg.hyperparams`` (a wheel or an
    editable install); in a source checkout used through ``PYTHONPATH``, the repository's ``hyperparams/``.

    :return: The path of ``gpg.yml``.
    :raises FileNotFoundError: if neither exists (a broken installation).
    """
    global _extracted_files
    try:
        resource = files("sb3_gpg.hyperparams").joinpath(CONFIG_FILE)
    except ModuleNotFoundError:  # source checkout on PYTHONPATH: hyperparams/ is not inside sb3_gpg/ there
        resource = None
    if resource is not None and resource.is_file():
        if isinstance(resource, Path):
            return resource
        # A zipped installation: the Zoo opens the config with open(), so it needs a real file.
        if _extracted_files is None:
            _extracted_files = contextlib.ExitStack()
            atexit.register(_extracted_files.close)
        return _extracted_files.enter_context(as_file(resource))
    checkout = Path(__file__).resolve().parents[2] / "hyperparams" / CONFIG_FILE
    if checkout.is_file():
        return checkout
    raise FileNotFoundError(
        f"{CONFIG_FILE} was found neither in the installed package sb3_gpg.hyperparams nor at {checkout}: "
        "reinstall sb3-gpg, or pass --conf-file."
    )


def load_config(config: str) -> dict[str, Any]:
    """
    Read a Zoo hyperparameter config as the Zoo does: a YAML file (``.yml``/``.yaml``), a Python file
    (``.py``) or an importable module, the last two with a dict named ``hyperparams``.

    :param config: The ``--conf-file`` value.
    :return: The entries, one per env id (plus ``default``/``atari``).
    :raises ZooConfigError: if the file is missing or holds no mapping of entries.
    """
    if config.endswith((".yml", ".yaml", ".py")) and not os.path.isfile(config):
        raise ZooConfigError(f"Hyperparameter file {config} not found (from --conf-file or the {ALGO} default).")
    if config.endswith((".yml", ".yaml")):
        with open(config) as file:
            entries = yaml.safe_load(file)
    elif config.endswith(".py"):
        namespace: dict[str, Any] = {}
        exec(Path(config).read_text(), namespace)
        entries = namespace.get("hyperparams")
    else:
        entries = getattr(importlib.import_module(config), "hyperparams", None)
    if not isinstance(entries, dict):
        raise ZooConfigError(f"{config} holds no hyperparameter entries: expected a mapping of env ids to entries.")
    return entries


def entry_name(entries: Mapping[str, Any], env_id: str, is_atari: bool = False) -> str | None:
    """
    The entry of a config that the Zoo uses for an env: the env id, else ``atari`` for Atari games, else
    ``default``.

    :param entries: The config's entries (see :func:`load_config`).
    :param env_id: The env id.
    :param is_atari: Whether the env is an Atari game.
    :return: The entry's name, or ``None`` if the config has none for this env.
    """
    if env_id in entries:
        return env_id
    if is_atari and "atari" in entries:
        return "atari"
    return "default" if "default" in entries else None
