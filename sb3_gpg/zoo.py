"""
RL Zoo (``rl_zoo3``) integration: GPG as a Zoo algorithm.

:func:`register` adds GPG to the Zoo's tables the way the Zoo's own integrations of external algorithms
(SBX, custom algorithms) do: ``rl_zoo3.ALGOS["gpg"]`` and the ``"gpg"`` entries of the hyperparameter
sampler and converter tables of ``rl_zoo3.hyperparams_opt``. Every Zoo script reads these dicts when it builds
its parser and its model, so after :func:`register` ``--algo gpg`` is one of the choices of ``train``,
``enjoy`` and ``record_video``. Nothing is registered by ``import sb3_gpg`` or by importing this module: the
``sb3-gpg`` command line calls :func:`register`, and so can a user's own script.

:class:`GPGExperimentManager` is the Zoo's ``ExperimentManager`` with three additions that only apply to
``--algo gpg``: the packaged ``hyperparams/gpg.yml`` is the default config, the YAML entry is checked before
anything is built (:func:`check_hyperparameters`), and ``n_envs`` is tuned per trial by ``-optimize``.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import copy
import difflib
import importlib
import inspect
import math
import os
import socket
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import gymnasium as gym
import optuna
import yaml
from gymnasium import spaces
from rl_zoo3 import exp_manager as zoo_exp_manager
from rl_zoo3 import hyperparams_opt
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import ALGOS, get_wrapper_class
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecFrameStack, VecMonitor

from sb3_gpg.binning import BINNING_NAMES, SPATIAL_BINNINGS, make_binning
from sb3_gpg.gpg import COLLECTION_MODES, CRITIC_ARGUMENTS, GPG
from sb3_gpg.policies import NO_CRITIC, actor_net_arch
from sb3_gpg.vec_env import VEC_ENV_BACKENDS
from sb3_gpg.vec_env import make_vec_env as make_batched_env

#: The name of GPG in the Zoo's tables, its ``--algo`` value and its logs folder (``logs/gpg/``).
ALGO = "gpg"
#: The packaged hyperparameter file (``hyperparams/gpg.yml`` of the repository, ``sb3_gpg/hyperparams/`` once
#: installed).
CONFIG_FILE = "gpg.yml"

#: Keys of a Zoo YAML entry that the ``ExperimentManager`` consumes itself (budget, env creation, wrappers,
#: callbacks); the other keys become keyword arguments of the algorithm's constructor.
ZOO_KEYS = (
    "n_envs",
    "n_timesteps",
    "policy",
    "normalize",
    "policy_kwargs",
    "env_wrapper",
    "vec_env_wrapper",
    "frame_stack",
    "callback",
    "env_kwargs",
    "monitor_kwargs",
)
#: Constructor arguments that the Zoo sets itself, from its command line (``--seed``, ``--device``,
#: ``--verbose``, ``-tb``) or by building the env: in a YAML entry they would clash with those.
MANAGER_ARGUMENTS = ("env", "tensorboard_log", "seed", "verbose", "device", "_init_setup_model")

#: ``n_envs`` values that ``-optimize`` tries (the group size; the paper's best results use many envs).
N_ENVS_CHOICES = (4, 8, 16, 32, 64)
#: ``n_steps`` is tuned as a power of two, from 2**5 = 32 to 2**11 = 2048 steps per env and rollout.
N_STEPS_POW_RANGE = (5, 11)
#: Number of minibatches per epoch; the batch size is the rollout size ``n_steps * n_envs`` divided by it.
N_MINIBATCHES_CHOICES = (1, 2, 4, 8, 16, 32)
#: Cell sizes ε of the spatial binnings that ``-optimize`` tries (the paper's Figure 4 values).
BIN_SIZE_CHOICES = (0.2, 0.5, 1.0)


class ZooConfigError(ValueError):
    """A command line or hyperparameter entry that cannot train: raised before anything is built."""


def valid_keys() -> tuple[str, ...]:
    """
    The keys a ``gpg`` entry of a Zoo hyperparameter file may hold.

    :return: The Zoo's own keys (:data:`ZOO_KEYS`) and GPG's constructor arguments, less the ones the Zoo
        sets itself (:data:`MANAGER_ARGUMENTS`), sorted.
    """
    parameters = inspect.signature(GPG.__init__).parameters.values()
    constructor = {
        parameter.name
        for parameter in parameters
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
        and parameter.name not in (*MANAGER_ARGUMENTS, "self")
    }
    return tuple(sorted(constructor | set(ZOO_KEYS)))


# ----------------------------------------------------------------------------------------------------------
# Registration


def register() -> None:
    """
    Add GPG to the RL Zoo's tables: ``rl_zoo3.ALGOS["gpg"] = GPG`` and the ``"gpg"`` entries of
    ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` (:func:`sample_gpg_params`) and ``HYPERPARAMS_CONVERTER``
    (:func:`convert_gpg_params`).

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


# ----------------------------------------------------------------------------------------------------------
# The hyperparameter file

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
    checkout = Path(__file__).resolve().parent.parent / "hyperparams" / CONFIG_FILE
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


# ----------------------------------------------------------------------------------------------------------
# Checks


def check_env_id(env_id: str) -> None:
    """
    Check that an env id is registered with gymnasium.

    :param env_id: The ``--env`` value.
    :raises ZooConfigError: naming the id and the closest registered ids.
    """
    if env_id in gym.envs.registry:
        return
    matches = difflib.get_close_matches(env_id, list(gym.envs.registry), n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(matches)}?" if matches else "no registered id is close to it."
    raise ZooConfigError(
        f"Unknown environment id {env_id!r}: it is not registered with gymnasium; {hint} "
        "Envs of other packages register when their module is imported: pass it with --gym-packages MODULE."
    )


@contextlib.contextmanager
def replaced(module: object, name: str, value: object) -> Iterator[None]:
    """Temporarily replace ``module.name`` (how the Zoo's module-level choices are swapped, then restored)."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def _closest(value: str, valid: Sequence[str]) -> str:
    matches = difflib.get_close_matches(value, list(valid), n=1)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def _eval_zoo_string(text: str) -> Any:
    # The Zoo evaluates policy_kwargs strings in its exp_manager module (which imports torch.nn as nn, th...).
    return eval(text, dict(vars(zoo_exp_manager)))


def check_hyperparameters(
    hyperparams: Mapping[str, Any],
    config: str,
    entry: str | None,
    command_line: Mapping[str, Any] | None = None,
    observation_space: spaces.Space | None = None,
    n_timesteps: int = -1,
) -> None:
    """
    Check a ``gpg`` hyperparameter entry before anything is built, so that a mistake stops the run with a
    message that names the key, where it comes from and what would be valid.

    Refused: critic-only keys (``gae_lambda``, ``vf_coef``, ``clip_range_vf``: GPG has no value function),
    unknown or misspelled keys (with the closest valid key), a missing ``policy`` or budget, a ``binning``
    or ``collection`` that does not exist, a value network in ``policy_kwargs``, and a binning (or
    ``bin_size``) that does not fit the env's observation space.

    :param hyperparams: The entry, with the ``-params`` overrides of the command line applied.
    :param config: The config it was read from (a path or module name), for the messages.
    :param entry: The name of the entry in the config (an env id, ``default`` or ``atari``).
    :param command_line: The ``-params`` overrides, to name them as the source of their keys.
    :param observation_space: The env's observation space (as the model will see it); ``None`` skips the
        checks that need it.
    :param n_timesteps: The ``-n`` budget of the command line (``<= 0``: none, ``n_timesteps`` is required).
    :raises ZooConfigError: on the first problem found.
    """
    command_line = command_line or {}

    def where(key: str) -> str:
        if key in command_line:
            return f"-params {key}:... on the command line"
        return f"the {entry!r} entry of {config}" if entry else str(config)

    _check_keys(hyperparams, where, n_timesteps)
    _check_gpg_values(hyperparams, where)
    _check_policy_kwargs(hyperparams, where)
    if observation_space is not None:
        _check_binning_fits(hyperparams, observation_space, where)


def _check_keys(hyperparams: Mapping[str, Any], where: Callable[[str], str], n_timesteps: int) -> None:
    for key in CRITIC_ARGUMENTS:
        if key in hyperparams:
            raise ZooConfigError(
                f"Key {key!r} in {where(key)} configures a critic, but {NO_CRITIC}: remove it "
                f"(critic-only keys: {', '.join(CRITIC_ARGUMENTS)})."
            )
    valid = valid_keys()
    for key in hyperparams:
        if key not in valid:
            raise ZooConfigError(
                f"Unknown key {key!r} in {where(key)}.{_closest(str(key), valid)} Valid keys for {ALGO}: {', '.join(valid)}."
            )
    if "policy" not in hyperparams:
        raise ZooConfigError(f"{where('policy')} has no 'policy': add one, e.g. policy: 'MlpPolicy'.")
    if "n_timesteps" not in hyperparams and n_timesteps <= 0:
        raise ZooConfigError(f"{where('n_timesteps')} has no 'n_timesteps': add one, or pass the budget with -n.")


def _check_gpg_values(hyperparams: Mapping[str, Any], where: Callable[[str], str]) -> None:
    binning = hyperparams.get("binning", "time")
    if not callable(binning) and binning not in BINNING_NAMES:
        raise ZooConfigError(
            f"binning={binning!r} in {where('binning')} is not a binning.{_closest(str(binning), BINNING_NAMES)} "
            f"Valid binnings: {', '.join(BINNING_NAMES)} (or a callable f(obs, t) in a Python config)."
        )
    collection = hyperparams.get("collection", "window")
    if collection not in COLLECTION_MODES:
        raise ZooConfigError(
            f"collection={collection!r} in {where('collection')} is not a collection mode."
            f"{_closest(str(collection), COLLECTION_MODES)} Valid modes: {', '.join(COLLECTION_MODES)}."
        )


def _check_policy_kwargs(hyperparams: Mapping[str, Any], where: Callable[[str], str]) -> None:
    policy_kwargs = hyperparams.get("policy_kwargs")
    if isinstance(policy_kwargs, str):
        try:
            policy_kwargs = _eval_zoo_string(policy_kwargs)
        except Exception:  # left to the Zoo, which evaluates it the same way and reports its own error
            return
    if isinstance(policy_kwargs, dict) and "net_arch" in policy_kwargs:
        try:
            actor_net_arch(policy_kwargs["net_arch"])
        except ValueError as error:
            raise ZooConfigError(f"policy_kwargs in {where('policy_kwargs')}: {error}") from error


def _check_binning_fits(hyperparams: Mapping[str, Any], observation_space: spaces.Space, where: Callable[[str], str]) -> None:
    binning = hyperparams.get("binning", "time")
    try:
        make_binning(binning, observation_space, hyperparams.get("bin_size", 1.0))
    except ValueError as error:
        key = "bin_size" if "bin_size" in str(error) and binning in SPATIAL_BINNINGS else "binning"
        raise ZooConfigError(
            f"{key}={hyperparams.get(key, binning)!r} in {where(key)} does not fit the observation space: {error} "
            f"Valid binnings for {observation_space}: {', '.join(valid_binnings(observation_space))}."
        ) from error


def valid_binnings(observation_space: spaces.Space) -> tuple[str, ...]:
    """
    :param observation_space: An observation space.
    :return: The named binnings that apply to it (``space``/``space_time`` need a ``Box``, ``state`` a discrete
        space).
    """
    names = []
    for name in BINNING_NAMES:
        try:
            make_binning(name, observation_space, 1.0)
        except ValueError:
            continue
        names.append(name)
    return tuple(names)


def observation_space_of(
    env_id: str, hyperparams: Mapping[str, Any], env_kwargs: Mapping[str, Any] | None = None
) -> spaces.Space:
    """
    The observation space a model trained with an entry sees: the env made with its ``env_kwargs`` and
    wrapped with the entry's ``env_wrapper``, ``vec_env_wrapper`` and ``frame_stack``, as the Zoo builds it.

    :param env_id: The env id.
    :param hyperparams: The entry.
    :param env_kwargs: Keyword arguments of the env's constructor.
    :return: The observation space.
    """
    spec = gym.spec(env_id)
    env_wrapper = get_wrapper_class(dict(hyperparams))
    vec_env_wrapper = get_wrapper_class(dict(hyperparams), "vec_env_wrapper")

    def make_env() -> gym.Env:
        env = spec.make(**(env_kwargs or {}))
        return env_wrapper(env) if env_wrapper is not None else env

    vec_env: VecEnv = DummyVecEnv([make_env])
    try:
        if vec_env_wrapper is not None:
            vec_env = vec_env_wrapper(vec_env)  # type: ignore[assignment, arg-type]
        if hyperparams.get("frame_stack"):
            vec_env = VecFrameStack(vec_env, int(hyperparams["frame_stack"]))
        return vec_env.observation_space
    finally:
        vec_env.close()


# ----------------------------------------------------------------------------------------------------------
# Hyperparameter search


@dataclass(frozen=True)
class SearchSpace:
    """
    What :func:`sample_gpg_params` may draw in one study.

    :param binnings: The binnings to try (the ones valid for the env's observation space).
    :param n_envs: The group sizes to try; empty: ``n_envs`` is not tuned (the entry's is used).
    :param max_n_steps_pow: The largest ``n_steps`` is ``2 ** max_n_steps_pow``.
    """

    binnings: tuple[str, ...] = ("time", "none")
    n_envs: tuple[int, ...] = ()
    max_n_steps_pow: int = N_STEPS_POW_RANGE[1]

    @classmethod
    def for_experiment(cls, observation_space: spaces.Space | None, n_timesteps: int) -> SearchSpace:
        """
        The search space of a study: binnings that fit the observation space, and group sizes and rollout
        lengths cut so that a trial's budget holds at least one rollout (else the trial would train on a
        rollout longer than its budget). It depends on the budget, not on the trial, so that every trial of a
        study draws from the same distributions.

        :param observation_space: The env's observation space (``None``: ``time`` and ``none`` only).
        :param n_timesteps: The budget of each trial.
        :return: The search space.
        """
        low, high = N_STEPS_POW_RANGE
        n_envs = tuple(n for n in N_ENVS_CHOICES if n * 2**low <= n_timesteps) or N_ENVS_CHOICES[:1]
        max_pow = math.floor(math.log2(max(n_timesteps, 1) / max(n_envs))) if n_timesteps > 0 else high
        binnings = valid_binnings(observation_space) if observation_space is not None else cls.binnings
        return cls(binnings=binnings, n_envs=n_envs, max_n_steps_pow=min(max(max_pow, low), high))


# The search space of the study the current thread's trial belongs to, set by GPGExperimentManager.objective
# around the Zoo's objective (a context variable: Optuna's n_jobs > 1 runs trials in threads).
# Unset: the defaults of SearchSpace() (n_envs not tuned), as under the Zoo's own ExperimentManager.
_search_space: contextvars.ContextVar[SearchSpace | None] = contextvars.ContextVar("gpg_search_space", default=None)


def sample_gpg_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler of GPG hyperparameters for the Zoo's ``-optimize`` (``HYPERPARAMS_SAMPLER["gpg"]``).

    Draws the learning rate, ``n_steps``, the batch size (as a number of minibatches of the rollout), the
    epochs, the clip range, the entropy coefficient, gamma, the group size ``n_envs`` and the GPG keys
    ``binning`` and ``bin_size`` (for the spatial binnings). ``n_envs`` is drawn only when
    :class:`GPGExperimentManager` runs the study: it draws it first, builds the trial's envs with it, and the
    draw here returns the same value (Optuna returns a trial's existing value for a parameter name).

    :param trial: The Optuna trial.
    :param n_actions: Number of actions (the Zoo's sampler signature; unused).
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
    params["one_minus_gamma"] = trial.suggest_float("one_minus_gamma", 1e-4, 0.05, log=True)
    params["binning"] = trial.suggest_categorical("binning", space.binnings)
    if params["binning"] in SPATIAL_BINNINGS:
        params["bin_size"] = trial.suggest_categorical("bin_size", BIN_SIZE_CHOICES)

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
    :return: Hyperparameters, ``n_envs`` included.
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
    }
    if "bin_size" in sampled_params:
        hyperparams["bin_size"] = sampled_params["bin_size"]
    return hyperparams


# ----------------------------------------------------------------------------------------------------------
# The experiment manager


class GPGExperimentManager(ExperimentManager):
    """
    The Zoo's ``ExperimentManager`` (same arguments), with three additions for ``algo="gpg"``; other
    algorithms run unchanged.

    - Without a ``config`` (``--conf-file``), the packaged ``gpg.yml`` (:func:`default_config_path`) is used
      instead of ``rl_zoo3/hyperparams/gpg.yml``, which does not exist.
    - The entry is checked with :func:`check_hyperparameters` (against the env's observation space) when
      it is read, before any env, log folder or model is made.
    - ``-optimize`` tunes ``n_envs``: each trial draws it and builds its envs with it (see
      :func:`sample_gpg_params`), and records the worker (``host:pid``) that ran it in its user attributes.
    """

    def __init__(self, *args: Any, vec_env_backend: str = "dummy", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if vec_env_backend not in VEC_ENV_BACKENDS:
            raise ZooConfigError(f"Unknown --vec-env {vec_env_backend!r}: valid backends are {', '.join(VEC_ENV_BACKENDS)}.")
        #: ``--vec-env``: SB3's ``dummy``/``subproc``, or a batched backend (``gymnasium``, ``envpool``).
        self.vec_env_backend = vec_env_backend
        arguments = inspect.signature(ExperimentManager.__init__).bind(self, *args, **kwargs).arguments
        #: The env's observation space, known once the hyperparameters are read (gpg only).
        self.observation_space: spaces.Space | None = None
        if self.algo == ALGO and not arguments.get("config"):
            self.config = str(default_config_path())

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """
        Read the entry of the env, as the Zoo does, and check it when the algorithm is GPG.

        :return: The hyperparameters and the ones to save (see ``ExperimentManager.read_hyperparameters``).
        """
        if self.algo != ALGO:
            return super().read_hyperparameters()
        entries = load_config(self.config)
        entry = entry_name(entries, self.env_name.gym_id, self._is_atari)
        if entry is None:
            raise ZooConfigError(
                f"{self.config} has no entry for {self.env_name.gym_id} and no 'default' entry: add one. "
                f"Entries: {', '.join(map(str, entries))}."
            )
        hyperparams, saved_hyperparams = super().read_hyperparameters()
        # The keys first, then (with the env made from a valid entry) whether the binning fits its observations.
        check_hyperparameters(
            hyperparams, self.config, entry, command_line=self.custom_hyperparams, n_timesteps=self.n_timesteps
        )
        # The Zoo lets the entry's env_kwargs replace those of the command line (after merging them in).
        env_kwargs = hyperparams.get("env_kwargs", self.env_kwargs)
        self.observation_space = observation_space_of(self.env_name.gym_id, hyperparams, env_kwargs)
        check_hyperparameters(
            hyperparams,
            self.config,
            entry,
            command_line=self.custom_hyperparams,
            observation_space=self.observation_space,
            n_timesteps=self.n_timesteps,
        )
        return hyperparams, saved_hyperparams

    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> VecEnv:
        """
        The Zoo's ``create_envs``; with a batched ``--vec-env`` backend its ``make_vec_env`` call builds the
        batched env instead, and the rest of the Zoo's pipeline (``vec_env_wrapper``, ``VecNormalize``, frame
        stacking, image transposition) wraps it unchanged.
        """
        if self.vec_env_backend in ("dummy", "subproc"):
            return super().create_envs(n_envs, eval_env, no_log)

        def make_batched_vec_env(env_id, n_envs, seed=None, env_kwargs=None, monitor_dir=None, wrapper_class=None, **_):
            if wrapper_class is not None:
                raise ZooConfigError(
                    f"env_wrapper wraps each gymnasium env, which --vec-env {self.vec_env_backend} does not build one by "
                    "one: remove it, use vec_env_wrapper, or --vec-env dummy."
                )
            env = make_batched_env(
                self.env_name.gym_id, n_envs, backend=self.vec_env_backend, seed=seed, env_kwargs=env_kwargs
            )
            if monitor_dir is not None:
                # The Zoo's plot_train reads monitor files; the batched env's episode statistics are SB3
                # Monitor's already, so VecMonitor's warning about an inner Monitor does not apply.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    env = VecMonitor(env, filename=os.path.join(monitor_dir, "batched"))
            return env

        with replaced(zoo_exp_manager, "make_vec_env", make_batched_vec_env):
            return super().create_envs(n_envs, eval_env, no_log)

    def objective(self, trial: optuna.Trial) -> float:
        """
        The Zoo's objective, with the trial's ``n_envs`` drawn first (for GPG).

        :param trial: The Optuna trial.
        :return: The trial's last mean evaluation reward.
        """
        if self.algo != ALGO:
            return super().objective(trial)
        space = SearchSpace.for_experiment(self.observation_space, self.n_timesteps)
        # A shallow copy per trial: with n_jobs > 1 the trials of this manager run in threads at once.
        manager = copy.copy(self)
        manager.n_envs = trial.suggest_categorical("n_envs", space.n_envs)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        token = _search_space.set(space)
        try:
            return ExperimentManager.objective(manager, trial)
        finally:
            _search_space.reset(token)
