"""GPG in the RL Zoo's tables: ``rl_zoo3.ALGOS`` and the sampler and converter tables of ``-optimize``."""

from __future__ import annotations

from rl_zoo3 import hyperparams_opt
from rl_zoo3.utils import ALGOS

from sb3_gpg.gpg import GPG
from sb3_gpg.zoo.config import ALGO
from sb3_gpg.zoo.search import convert_gpg_params, sample_gpg_params


def register() -> None:
    """
    Add GPG to the RL Zoo's tables: ``rl_zoo3.ALGOS["gpg"] = GPG`` and the ``"gpg"`` entries of
    ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` (:func:`~sb3_gpg.zoo.sample_gpg_params`) and
    ``HYPERPARAMS_CONVERTER`` (:func:`~sb3_gpg.zoo.convert_gpg_params`).

    This is how the Zoo plugs in algorithms it does not ship (its SBX integration does the same): its
    scripts and its ``ExperimentManager`` look algorithms up in these dicts when they run, so nothing
    installed is edited. Calling it again is harmless.

    :raises ValueError: if another algorithm is already registered under ``"gpg"``.
    """
    registered = ALGOS.get(ALGO)
    if registered is not None and registered is not GPG:
        raise ValueError(f"rl_zoo3.ALGOS[{ALGO!r}] is already {registered!r}: refusing to replace it with {GPG!r}.")
    ALGOS[ALGO] = GPG
    hyperparams_opt.HYPERPARAMS_SAMPLER[ALGO] = sample_gpg_params
    hyperparams_opt.HYPERPARAMS_CONVERTER[ALGO] = convert_gpg_params


def is_registered() -> bool:
    """:return: Whether :func:`register` has added GPG to the Zoo's algorithm table."""
    return ALGOS.get(ALGO) is GPG
