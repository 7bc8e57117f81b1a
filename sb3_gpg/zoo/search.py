"""
The Optuna search space of ``-optimize`` for GPG: the Zoo's ``HYPERPARAMS_SAMPLER["gpg"]`` and
``HYPERPARAMS_CONVERTER["gpg"]``, and the per-study bounds they draw within.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from gymnasium import spaces

from sb3_gpg.arguments import ArgumentError
from sb3_gpg.binning import BINNING_NAMES, SPATIAL_BINNINGS, make_binning
from sb3_gpg.exploration import grid_bounds
from sb3_gpg.gpg import GPG
from sb3_gpg.zoo.config import ALGO

#: ``n_envs`` values that ``-optimize`` tries (the group size; the paper's best results use many envs).
N_ENVS_CHOICES = (4, 8, 16, 32, 64)
#: ``n_steps`` is tuned as a power of two, from 2**5 = 32 to 2**11 = 2048 steps per env and rollout.
N_STEPS_POW_RANGE = (5, 11)
#: Number of minibatches per epoch; the batch size is the rollout size ``n_steps * n_envs`` divided by it.
N_MINIBATCHES_CHOICES = (1, 2, 4, 8, 16, 32)
#: Cell sizes ε of the spatial binnings that ``-optimize`` tries (the paper's Figure 4 values).
BIN_SIZE_CHOICES = (0.2, 0.5, 1.0)
#: Collection modes: the window, and the two that give complete returns (constant-penalty tasks, where the window's
#: truncated returns are all equal and carry no signal).
COLLECTION_CHOICES = ("window", "carry", "episodes")
#: GRPO's groups of envs that share a start (complete episodes only): 1 is independent starts.
SHARED_STARTS_CHOICES = (1, 2, 4)
#: Weights of earlier rollouts' samples in each bin (few envs, sparse cells); 0 is the current group only.
HISTORY_WEIGHT_CHOICES = (0.0, 0.5, 0.9)
#: Sparse-bin fallback of the spatial binnings: 0 (off) or ``k`` with shrinkage toward the coarser bins.
MIN_BIN_SAMPLES_CHOICES = (0, 4)
#: gSDE on or off, for continuous actions: each env's exploration noise is then a consistent function of the state
#: (goals that independent noise never reaches: MountainCarContinuous).
USE_SDE_CHOICES = (False, True)
#: ``beta`` of the count-based novelty bonus (:class:`~sb3_gpg.exploration.VecCountBonus`; 0: none), for a constant
#: reward until a rarely reached goal, where every return of a group is equal (MountainCar-v0); drawn for ``Box``
#: observations with finite bounds and at most :data:`BONUS_MAX_DIMENSIONS` dimensions.
BONUS_BETA_CHOICES = (0.0, 0.1, 0.3)
#: Grid intervals per observation dimension of the bonus's cells.
BONUS_CELLS_CHOICES = (16, 32, 64)
#: The bonus's grid suits a few dimensions: in more, almost every state is a new cell and the bonus a constant.
BONUS_MAX_DIMENSIONS = 4
#: The wrapper's import path, as a ``vec_env_wrapper`` entry names it.
BONUS_WRAPPER = "sb3_gpg.exploration.VecCountBonus"
#: The keys a trial draws only under conditions, at GPG's constructor defaults for the trials that do not draw them:
#: the Zoo starts every trial from the env's entry, whose own values must not slip into a trial that did not choose
#: them (an entry's ``shared_starts: 4`` would make a trial of the window fail, its ``bin_size`` warn with time bins).
UNDRAWN = {
    name: inspect.signature(GPG).parameters[name].default
    for name in ("bin_size", "min_bin_samples", "bin_fallback", "shared_starts", "history_weight", "use_sde")
}


def valid_binnings(observation_space: spaces.Space) -> tuple[str, ...]:
    """
    :param observation_space: An observation space.
    :return: The named binnings that apply to it (``space``/``space_time`` need a ``Box``, ``state`` a discrete
        space).
    """
    names = []
    for name in BINNING_NAMES:
        try:
            make_binning(name, observation_space)
        except ArgumentError:
            continue
        names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class SearchSpace:
    """
    What :func:`sample_gpg_params` may draw in one study.

    :param binnings: The binnings to try (the ones valid for the env's observation space).
    :param n_envs: The group sizes to try; empty: ``n_envs`` is not tuned (the entry's is used).
    :param max_n_steps_pow: The largest ``n_steps`` is ``2 ** max_n_steps_pow``.
    :param bonus: Whether to draw the novelty bonus (:func:`sample_bonus`), which replaces the entry's
        ``vec_env_wrapper``.
    """

    binnings: tuple[str, ...] = ("time", "none")
    n_envs: tuple[int, ...] = ()
    max_n_steps_pow: int = N_STEPS_POW_RANGE[1]
    bonus: bool = False

    @classmethod
    def for_experiment(
        cls, observation_space: spaces.Space | None, n_timesteps: int, vec_env_wrapper: Any = None
    ) -> SearchSpace:
        """
        The search space of a study: binnings that fit the observation space, and group sizes and rollout
        lengths cut so that a trial's budget holds at least one rollout (else the trial would train on a
        rollout longer than its budget). It depends on the budget, not on the trial, so that every trial of a
        study draws from the same distributions.

        :param observation_space: The env's observation space (``None``: ``time`` and ``none`` only).
        :param n_timesteps: The budget of each trial.
        :param vec_env_wrapper: The entry's ``vec_env_wrapper``: the bonus is drawn only where the entry has none
            or the bonus itself (a trial replaces it, and must not drop another wrapper of the entry).
        :return: The search space.
        """
        low, high = N_STEPS_POW_RANGE
        n_envs = tuple(n for n in N_ENVS_CHOICES if n * 2**low <= n_timesteps) or N_ENVS_CHOICES[:1]
        max_pow = math.floor(math.log2(max(n_timesteps, 1) / max(n_envs))) if n_timesteps > 0 else high
        binnings = valid_binnings(observation_space) if observation_space is not None else cls.binnings
        own_wrapper = (
            vec_env_wrapper is None
            or vec_env_wrapper == BONUS_WRAPPER
            or (isinstance(vec_env_wrapper, dict) and list(vec_env_wrapper) == [BONUS_WRAPPER])
        )
        bonus = own_wrapper and _bonus_fits(observation_space)
        return cls(binnings=binnings, n_envs=n_envs, max_n_steps_pow=min(max(max_pow, low), high), bonus=bonus)


def _bonus_fits(observation_space: spaces.Space | None) -> bool:
    """Whether the bonus's grid fits the observations: bounds it accepts, over a few dimensions."""
    if observation_space is None:
        return False
    try:
        low, _ = grid_bounds(observation_space)
    except ArgumentError:
        return False
    return low.size <= BONUS_MAX_DIMENSIONS


def sample_bonus(trial: optuna.Trial) -> dict[str, Any] | None:
    """
    Draw the novelty bonus of a trial (``bonus_beta``, then ``bonus_cells`` if it is not 0).

    :param trial: The Optuna trial.
    :return: The trial's ``vec_env_wrapper`` as an entry writes it, or ``None`` for no bonus.
    """
    beta = trial.suggest_categorical("bonus_beta", BONUS_BETA_CHOICES)
    cells = trial.suggest_categorical("bonus_cells", BONUS_CELLS_CHOICES) if beta else None
    return _bonus_entry(beta, cells)


def _bonus_entry(beta: float, cells: int | None) -> dict[str, Any] | None:
    return {BONUS_WRAPPER: {"beta": beta, "cells": cells}} if beta else None


# The search space of the study the current thread's trial belongs to, set by drawing_from() around the Zoo's
# objective (a context variable: Optuna's n_jobs > 1 runs trials in threads). Unset: the defaults of SearchSpace()
# (n_envs not tuned), as under the Zoo's own ExperimentManager.
_search_space: contextvars.ContextVar[SearchSpace | None] = contextvars.ContextVar("gpg_search_space", default=None)


@contextlib.contextmanager
def drawing_from(space: SearchSpace) -> Iterator[None]:
    """Within this block, in this thread, :func:`sample_gpg_params` draws from ``space``."""
    token = _search_space.set(space)
    try:
        yield
    finally:
        _search_space.reset(token)


def sample_gpg_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler of GPG hyperparameters for the Zoo's ``-optimize`` (``HYPERPARAMS_SAMPLER["gpg"]``).

    Draws the learning rate, ``n_steps``, the batch size (as a number of minibatches of the rollout), the
    epochs, the clip range, the entropy coefficient, gamma (down to 0.9), the group size ``n_envs`` and the GPG
    keys ``binning``, ``bin_size`` and ``min_bin_samples`` (the spatial binnings, with the shrinking fallback),
    ``collection``, ``shared_starts`` (complete episodes only), ``history_weight`` (independent starts only) and
    ``use_sde`` (continuous actions only): the remedies for GPG's measured failure modes (equal truncated returns,
    start-state variance, sparse bins, rewards that independent action noise never reaches).
    ``n_envs`` and the novelty bonus (:func:`sample_bonus`) are drawn only when
    :class:`GPGExperimentManager` runs the study: they set the trial's envs, so it draws them first and builds the
    envs with them; the ``n_envs`` draw here returns the same value (Optuna returns a trial's existing value for a
    parameter name).

    :param trial: The Optuna trial.
    :param n_actions: The action dimension of a ``Box`` action space, 0 for the others (the Zoo's ``n_actions``):
        ``use_sde`` is drawn only for ``Box`` actions.
    :param n_envs: The number of envs the trial's env was built with.
    :param additional_args: The Zoo's extra sampler arguments (unused).
    :return: Constructor keyword arguments of GPG.
    """
    space = _search_space.get() or SearchSpace()
    params: dict[str, Any] = {}
    if space.n_envs:
        params["n_envs"] = n_envs = trial.suggest_categorical("n_envs", space.n_envs)
    params["n_steps_pow"] = trial.suggest_int("n_steps_pow", N_STEPS_POW_RANGE[0], space.max_n_steps_pow)
    params["n_minibatches"] = trial.suggest_categorical("n_minibatches", N_MINIBATCHES_CHOICES)
    params["n_epochs"] = trial.suggest_categorical("n_epochs", (1, 4, 10, 20))
    params["learning_rate"] = trial.suggest_float("learning_rate", 1e-5, 5e-3, log=True)
    params["clip_range"] = trial.suggest_categorical("clip_range", (0.1, 0.2, 0.3, 0.4))
    params["ent_coef"] = trial.suggest_float("ent_coef", 1e-8, 0.1, log=True)
    params["one_minus_gamma"] = trial.suggest_float("one_minus_gamma", 1e-4, 0.1, log=True)
    params["binning"] = trial.suggest_categorical("binning", space.binnings)
    if params["binning"] in SPATIAL_BINNINGS:
        params["bin_size"] = trial.suggest_categorical("bin_size", BIN_SIZE_CHOICES)
        params["min_bin_samples"] = trial.suggest_categorical("min_bin_samples", MIN_BIN_SAMPLES_CHOICES)
    params["collection"] = trial.suggest_categorical("collection", COLLECTION_CHOICES)
    if params["collection"] == "episodes":
        params["shared_starts"] = trial.suggest_categorical("shared_starts", SHARED_STARTS_CHOICES)
    if params.get("shared_starts", 1) == 1:
        params["history_weight"] = trial.suggest_categorical("history_weight", HISTORY_WEIGHT_CHOICES)
    if n_actions > 0:
        params["use_sde"] = trial.suggest_categorical("use_sde", USE_SDE_CHOICES)

    hyperparams = convert_gpg_params(params, n_envs=n_envs)
    # Display the values the model gets, as the Zoo's samplers do.
    for key in ("gamma", "n_steps", "batch_size"):
        trial.set_user_attr(key, hyperparams[key])
    del hyperparams["n_envs"]  # an env setting, not a constructor argument
    return hyperparams


def convert_gpg_params(sampled_params: dict[str, Any], n_envs: int | None = None) -> dict[str, Any]:
    """
    Turn the parameters of a trial (see :func:`sample_gpg_params`) into hyperparameters of a ``gpg``
    entry (``HYPERPARAMS_CONVERTER["gpg"]``, used by ``--trial-id`` to train with a trial's values).

    :param sampled_params: The trial's parameters.
    :param n_envs: The number of envs when the study did not tune it.
    :return: Hyperparameters, ``n_envs`` included, and ``vec_env_wrapper`` where the study drew the bonus.
    :raises ValueError: if the number of envs is unknown (needed for the batch size).
    """
    n_envs = sampled_params.get("n_envs", n_envs)
    if n_envs is None:
        raise ValueError(
            f"These {ALGO} trial parameters have no n_envs ({sorted(sampled_params)}): the batch size is a fraction "
            "of the rollout n_steps * n_envs. Load trials of studies run with sb3-gpg train -optimize."
        )
    n_steps = 2 ** int(sampled_params["n_steps_pow"])
    hyperparams = {
        "n_envs": n_envs,
        "n_steps": n_steps,
        "batch_size": max(n_steps * n_envs // int(sampled_params["n_minibatches"]), 2),
        "n_epochs": sampled_params["n_epochs"],
        "learning_rate": sampled_params["learning_rate"],
        "clip_range": sampled_params["clip_range"],
        "ent_coef": sampled_params["ent_coef"],
        "gamma": 1 - sampled_params["one_minus_gamma"],
        "binning": sampled_params["binning"],
        **UNDRAWN,
    }
    for key in ("collection", *UNDRAWN):
        if key in sampled_params:
            hyperparams[key] = sampled_params[key]
    if "bonus_beta" in sampled_params:  # an env setting, which the Zoo applies when it makes the envs
        hyperparams["vec_env_wrapper"] = _bonus_entry(sampled_params["bonus_beta"], sampled_params.get("bonus_cells"))
    if hyperparams["min_bin_samples"]:
        hyperparams["bin_fallback"] = "shrink"
    return hyperparams
