"""
Checks of a ``gpg`` hyperparameter entry, made before anything is built.

The rules on GPG's constructor arguments are the core's: :func:`sb3_gpg.gpg.check_gpg_arguments` and the
binning's fit to the observation space, :func:`sb3_gpg.binning.make_binning`. This module calls them and adds
where the value came from ("Key 'binning' of entry 'CartPole-v1' in gpg.yml: ..."). The rules written here
are the ones only the Zoo knows: which keys an entry may hold, that it names a policy and a budget, the types
of the Zoo's own keys (``n_envs``, ``n_timesteps``, ``normalize``, ``frame_stack``, ...), and its schedule
strings (``learning_rate: lin_3e-4``).
"""

from __future__ import annotations

import difflib
import inspect
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from rl_zoo3 import exp_manager as zoo_exp_manager
from rl_zoo3.utils import SimpleLinearSchedule, get_callback_list, get_class_by_name, get_wrapper_class
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecFrameStack

from sb3_gpg.arguments import ArgumentError, check_int, is_number
from sb3_gpg.binning import make_binning
from sb3_gpg.gpg import GPG, check_gpg_arguments, check_shared_starts
from sb3_gpg.zoo.config import ALGO, ZooConfigError

#: Keys of a Zoo YAML entry that the ``ExperimentManager`` consumes itself (budget, env creation, wrappers,
#: callbacks); the other keys become keyword arguments of the algorithm's constructor. ``policy_kwargs`` is
#: both: the Zoo evaluates it when it is a string, then hands it to the constructor.
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
#: Constructor arguments that the Zoo turns into a linear schedule when they are a string ``lin_<initial value>``.
SCHEDULE_KEYS = ("learning_rate", "clip_range")
_LINEAR_SCHEDULE = re.compile(r"lin_(?P<initial>.+)")


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


def key_source(key: str, config: str, entry: str | None, command_line: Mapping[str, Any]) -> str:
    """Where a key's value comes from, to begin an error message: the command line's ``-params`` or the entry."""
    if key in command_line:
        return f"Key {key!r} set by -params {key}:... on the command line"
    return f"Key {key!r} of entry {entry!r} in {config}" if entry else f"Key {key!r} in {config}"


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

    In this order: the Zoo's own keys and schedule strings, GPG's constructor arguments
    (:func:`~sb3_gpg.gpg.check_gpg_arguments`: critic keys, integers, numbers, choices, ``policy_kwargs``, ...),
    unknown keys (with the closest valid key), the ``policy`` and the budget, and, given the observation space,
    the binning's fit to it (:func:`~sb3_gpg.binning.make_binning`).

    :param hyperparams: The entry, with the ``-params`` overrides of the command line applied.
    :param config: The config it was read from (a path or module name), for the messages.
    :param entry: The name of the entry in the config (an env id, ``default`` or ``atari``).
    :param command_line: The ``-params`` overrides, to name them as the source of their keys.
    :param observation_space: The env's observation space (as the model will see it); ``None`` skips the
        check that needs it.
    :param n_timesteps: The ``-n`` budget of the command line (``<= 0``: none, ``n_timesteps`` is required).
    :raises ZooConfigError: on the first problem found.
    """
    command_line = command_line or {}

    def where(key: str) -> str:
        return key_source(key, config, entry, command_line)

    try:
        arguments = _constructor_arguments(hyperparams)
        check_gpg_arguments(arguments)
        _check_keys(hyperparams, n_timesteps)
        if "shared_starts" in arguments:  # the entry knows n_envs, which shared_starts must divide
            collection = arguments.get("collection", "window")
            check_shared_starts(arguments["shared_starts"], collection, hyperparams.get("n_envs", 1))
        if observation_space is not None:
            with warnings.catch_warnings():
                # An ignored bin_size is GPG's warning to give, once, when the model is built.
                warnings.simplefilter("ignore", UserWarning)
                make_binning(arguments.get("binning", "time"), observation_space, arguments.get("bin_size"))
    except ArgumentError as error:
        hint = "" if error.argument in command_line else _yaml_string_hint(hyperparams.get(error.argument))
        raise ZooConfigError(f"{where(error.argument)}: {error}{hint}") from error


def _yaml_string_hint(value: Any) -> str:
    # PyYAML reads YAML 1.1, where a float needs a decimal point: 1e6 and 3e-4 are strings there.
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    if number.is_integer() and value.strip().lstrip("+-").isdigit():
        return f" ({value!r} is a string: write {value} without quotes.)"
    return (
        f" ({value!r} is a string: YAML 1.1 reads a number without a decimal point as one; "
        f"write {number!r} or !!float {value}.)"
    )


def _constructor_arguments(hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """
    Check the Zoo's own keys and schedule strings, and return the constructor arguments as the Zoo will pass them
    (a schedule string as a schedule, a ``policy_kwargs`` string evaluated), for the core's checks.
    """
    for key, check in _ZOO_KEY_RULES.items():
        if key in hyperparams:
            check(key, hyperparams[key])
    arguments = {key: value for key, value in hyperparams.items() if key not in ZOO_KEYS}
    for key in SCHEDULE_KEYS:
        if isinstance(arguments.get(key), str):
            arguments[key] = _linear_schedule(key, arguments[key])
    if "policy_kwargs" in hyperparams:
        arguments["policy_kwargs"] = _evaluated("policy_kwargs", hyperparams["policy_kwargs"])
    return arguments


def _linear_schedule(key: str, value: str) -> SimpleLinearSchedule:
    match = _LINEAR_SCHEDULE.fullmatch(value)
    try:
        initial = float(match["initial"]) if match else None
    except ValueError:
        initial = None
    if initial is None or not is_number(initial):
        raise ArgumentError(
            key, f"{key}={value!r} must be a number or the Zoo's linear schedule 'lin_<initial value>', e.g. 'lin_3e-4'."
        )
    return SimpleLinearSchedule(initial)


def _evaluated(key: str, value: Any) -> Any:
    """A value as the Zoo uses it: the Zoo evaluates a string as Python (``policy_kwargs``, ``normalize``, ...)."""
    if not isinstance(value, str):
        return value
    try:
        # In the namespace where the Zoo evaluates it: its exp_manager module (which imports torch.nn as nn...).
        return eval(value, dict(vars(zoo_exp_manager)))
    except Exception as error:
        raise ArgumentError(
            key, f"{key}={value!r} is a string the Zoo evaluates as Python, and it fails ({type(error).__name__}: {error})."
        ) from error


def _check_dict(key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ArgumentError(key, f"{key}={value!r} must be a dict of keyword arguments.")


def _check_evaluated_dict(key: str, value: Any) -> None:
    _check_dict(key, _evaluated(key, value))


def _check_budget(key: str, value: Any) -> None:
    if not is_number(value) or value <= 0:
        raise ArgumentError(key, f"{key}={value!r} must be a number of env steps > 0, e.g. !!float 1e6.")


def _check_normalize(key: str, value: Any) -> None:
    if not isinstance(value, bool) and not isinstance(_evaluated(key, value), dict):
        raise ArgumentError(
            key, f"{key}={value!r} must be true, false, or a dict of VecNormalize arguments, e.g. dict(norm_reward=False)."
        )


def _check_policy(key: str, value: Any) -> None:
    if isinstance(value, str) and "." in value:
        _check_loads(key, value, get_class_by_name)
    elif not isinstance(value, str) or value not in GPG.policy_aliases:
        raise ArgumentError(
            key, f"Unknown {key}={value!r}: valid policies are {', '.join(GPG.policy_aliases)}, or a class as module.Class."
        )


def _check_loads(key: str, value: Any, load: Callable[[Any], Any]) -> None:
    try:
        load(value)
    except Exception as error:
        raise ArgumentError(
            key,
            f"{key}={value!r} cannot be loaded ({type(error).__name__}: {error}): name a class as module.Class, "
            "a list of them, or {module.Class: {keyword: value}}.",
        ) from error


# The rules on the Zoo's own keys, one per key (policy_kwargs, also a constructor argument, is the core's).
_ZOO_KEY_RULES: dict[str, Callable[[str, Any], None]] = {
    "n_envs": check_int,
    "frame_stack": check_int,
    "n_timesteps": _check_budget,
    "policy": _check_policy,
    "normalize": _check_normalize,
    "env_kwargs": _check_dict,
    "monitor_kwargs": _check_evaluated_dict,
    "env_wrapper": lambda key, value: _check_loads(key, value, lambda wrapper: get_wrapper_class({key: wrapper}, key)),
    "vec_env_wrapper": lambda key, value: _check_loads(key, value, lambda wrapper: get_wrapper_class({key: wrapper}, key)),
    "callback": lambda key, value: _check_loads(key, value, lambda callback: get_callback_list({key: callback})),
}


def _check_keys(hyperparams: Mapping[str, Any], n_timesteps: int) -> None:
    valid = valid_keys()
    for key in hyperparams:
        if key not in valid:
            matches = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" Did you mean {matches[0]!r}?" if matches else ""
            raise ArgumentError(key, f"Unknown key {key!r}.{hint} Valid keys for {ALGO}: {', '.join(valid)}.")
    if "policy" not in hyperparams:
        raise ArgumentError("policy", "missing: add one, e.g. policy: 'MlpPolicy'.")
    if "n_timesteps" not in hyperparams and n_timesteps <= 0:
        raise ArgumentError("n_timesteps", "missing: add one, e.g. n_timesteps: !!float 1e6, or pass the budget with -n.")


def observation_space_of(
    env_id: str, hyperparams: Mapping[str, Any], env_kwargs: Mapping[str, Any] | None = None
) -> spaces.Space:
    """
    The observation space a model trained with an entry sees: the env made with its ``env_kwargs`` and
    wrapped with the entry's ``env_wrapper``, ``vec_env_wrapper`` and ``frame_stack``, as the Zoo builds it.

    :param env_id: The env id.
    :param hyperparams: The entry (checked: its wrappers load).
    :param env_kwargs: Keyword arguments of the env's constructor.
    :return: The observation space.
    :raises ArgumentError: where the ``vec_env_wrapper`` refuses its keyword arguments.
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
            try:
                vec_env = vec_env_wrapper(vec_env)  # type: ignore[assignment, arg-type]
            except (ArgumentError, TypeError) as error:  # its keyword arguments, from the entry
                wrapper = hyperparams["vec_env_wrapper"]
                raise ArgumentError("vec_env_wrapper", f"vec_env_wrapper={wrapper!r}: {error}") from error
        if hyperparams.get("frame_stack"):
            vec_env = VecFrameStack(vec_env, int(hyperparams["frame_stack"]))
        return vec_env.observation_space
    finally:
        vec_env.close()
