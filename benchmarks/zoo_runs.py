"""Runs of the RL Zoo's tasks through the Zoo's own experiment manager: SB3's PPO with the Zoo's tuned entry, GPG
with ours, or GPG with PPO's entry minus the critic, on one task with one seed; and what their records hold.

The suites that compare these runs (``zoo_suite``: GPG against PPO; ``shared_starts``: GRPO's groups) share this
module, their result files (``zoo_suite/<profile>/<task>/<variant>_s<seed>.json``) and so their runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import provenance, versions

#: The budget cap of the issue: the Zoo entry's ``n_timesteps``, at most this many env steps.
BUDGET_CAP = 1_000_000
#: The critic's keys, dropped from the Zoo's PPO entry for ``gpg-ppo-entry``.
CRITIC_KEYS = ("gae_lambda", "vf_coef", "clip_range_vf")
ALGOS = ("ppo", "gpg", "gpg-ppo-entry", "gpg-default")


@dataclass(frozen=True)
class ZooTask:
    """A task of the suite: the env and the name of its entry in the Zoo's ``ppo.yml``."""

    env_id: str
    zoo_entry: str

    @property
    def family(self) -> str:
        return self.env_id.split("-")[0]


TASKS: dict[str, ZooTask] = {
    "cartpole": ZooTask("CartPole-v1", "CartPole-v1"),
    "acrobot": ZooTask("Acrobot-v1", "Acrobot-v1"),
    "mountaincar": ZooTask("MountainCar-v0", "MountainCar-v0"),
    "mountaincar_continuous": ZooTask("MountainCarContinuous-v0", "MountainCarContinuous-v0"),
    "pendulum": ZooTask("Pendulum-v1", "Pendulum-v1"),
    "lunarlander": ZooTask("LunarLander-v3", "LunarLander-v3"),
    "lunarlander_continuous": ZooTask("LunarLanderContinuous-v3", "LunarLanderContinuous-v3"),
    "halfcheetah": ZooTask("HalfCheetah-v5", "HalfCheetah-v4"),
    "hopper": ZooTask("Hopper-v5", "Hopper-v4"),
}


@dataclass(frozen=True)
class ZooProfile:
    name: str
    description: str
    eval_episodes: int
    seeds: tuple[int, ...]
    #: None: the Zoo entry's budget (capped); else this many env steps.
    budget: int | None
    publish: bool = True


PROFILES: dict[str, ZooProfile] = {
    "zoo": ZooProfile(
        "zoo",
        "the Zoo entry's n_timesteps capped at 1M; 5 seeds; 20 deterministic evaluation episodes",
        eval_episodes=20,
        seeds=(0, 1, 2, 3, 4),
        budget=None,
    ),
    "smoke": ZooProfile("smoke", "harness check: 2,000 env steps, 1 seed, 2 episodes", 2, (0,), 2_000, publish=False),
}


def zoo_ppo_entries() -> dict[str, Any]:
    """The installed rl_zoo3's ``hyperparams/ppo.yml``."""
    import rl_zoo3
    import yaml

    return yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / "ppo.yml").read_text())


def budget(task: ZooTask, profile: ZooProfile) -> int:
    """The env-step budget of every algorithm on a task: the Zoo PPO entry's, capped at :data:`BUDGET_CAP`."""
    if profile.budget is not None:
        return profile.budget
    return int(min(float(zoo_ppo_entries()[task.zoo_entry]["n_timesteps"]), BUDGET_CAP))


def parse_value(text: str) -> Any:
    """A ``--options`` value as YAML reads it (``4`` is an int, ``episodes`` a string, ``true`` a bool), except
    that a number in exponent notation is a float (YAML 1.1 reads ``1e-4`` as a string)."""
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


@dataclass(frozen=True)
class ZooRunSpec:
    """One run: an algorithm's entry on a task with a seed, GPG's extra options as sorted ``(name, value)`` pairs.

    A value may be a mapping, as a ``vec_env_wrapper`` with its arguments is: specs hash by their JSON record.
    """

    task: str
    algo: str
    seed: int
    profile: str
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS or self.algo not in ALGOS or self.profile not in PROFILES:
            raise ValueError(f"Unknown task, algo or profile in {self}: valid {list(TASKS)}, {ALGOS}, {list(PROFILES)}.")
        if self.algo == "ppo" and (gpg_only := sorted(set(dict(self.options)) & _gpg_only_arguments())):
            raise ValueError(f"PPO runs take Zoo keys only, not GPG's {gpg_only}: valid keys are PPO's and the Zoo's.")
        object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))

    @property
    def variant(self) -> str:
        """``ppo``, ``gpg``, ``gpg-ppo-entry``, ``gpg-default``, or e.g. ``gpg+collection=episodes,shared_starts=4``."""
        if not self.options:
            return self.algo
        return f"{self.algo}+" + ",".join(f"{name}={_label(value)}" for name, value in self.options)

    def __hash__(self) -> int:
        return hash(_normalized(self.to_json()))

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "options": [list(pair) for pair in self.options]}

    def check_record(self, record: Mapping[str, Any]) -> None:
        """Raise a ValueError unless ``record`` is a finished run of this spec."""
        spec = record["spec"]
        if ZooRunSpec(**{**spec, "options": tuple(map(tuple, spec["options"]))}) != self:
            raise ValueError(f"its record is of another run ({spec})")
        returns = np.asarray(record["eval"]["returns"], dtype=float)
        if len(returns) != PROFILES[self.profile].eval_episodes or not np.all(np.isfinite(returns)):
            raise ValueError(f"its evaluation has {len(returns)} returns, some not finite: {returns.tolist()}")
        # A run counts for the entry it trained with: once an entry is retuned, its old runs are run again.
        saved = record["hyperparameters"]
        for key, value in entry_hyperparameters(self).items():
            if key != "n_timesteps" and _normalized(saved.get(key)) != _normalized(value):
                raise ValueError(f"it trained with {key}={saved.get(key)!r}, the entry now says {value!r}")

    def file(self) -> str:
        return f"zoo_suite/{self.profile}/{self.task}/{self.variant}_s{self.seed}.json"


def _normalized(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _gpg_only_arguments() -> set[str]:
    """The keys of a ``gpg`` entry that a ``ppo`` entry lacks: GPG's own constructor arguments (``binning``, ...)."""
    import inspect

    from stable_baselines3 import PPO

    from sb3_gpg import zoo

    return set(zoo.valid_keys()) - set(zoo.ZOO_KEYS) - set(inspect.signature(PPO).parameters)


def _label(value: Any) -> str:
    """An option's value in a variant's name: a mapping or list in YAML's flow style, as ``--options`` takes it."""
    if isinstance(value, (Mapping, list)):
        import yaml

        return yaml.safe_dump(value, default_flow_style=True, width=float("inf")).strip()
    return str(value)


#: ``gpg.yml`` of the checkout the benchmark runs from, not the installed package's: a sweep running from a
#: worktree trains, and checks its records against, the entries of its own commit while ``main`` moves on.
OUR_CONFIG = Path(__file__).resolve().parents[1] / "hyperparams" / "gpg.yml"


def _our_entries() -> dict[str, Any]:
    """Our entries (:data:`OUR_CONFIG`)."""
    from sb3_gpg import zoo

    return zoo.load_config(str(OUR_CONFIG))


def entry_hyperparameters(spec: ZooRunSpec) -> dict[str, Any]:
    """The entry a run trains with, its options applied, as the Zoo saves it (before any preprocessing)."""
    entry, _ = _entry(spec, TASKS[spec.task])
    return {**entry, **dict(spec.options)}


def _entry(spec: ZooRunSpec, task: ZooTask) -> tuple[dict[str, Any], str]:
    """The entry a run trains with and where it comes from."""
    if spec.algo == "gpg":
        from sb3_gpg import zoo

        entries = _our_entries()
        name = zoo.entry_name(entries, task.env_id)
        assert name is not None, f"{OUR_CONFIG} has no entry for {task.env_id} and no default"
        return dict(entries[name]), f"hyperparams/gpg.yml {name}"
    if spec.algo == "gpg-default":
        return dict(_our_entries()["default"]), "hyperparams/gpg.yml default"
    entry = dict(zoo_ppo_entries()[task.zoo_entry])
    source = f"rl_zoo3 {versions().get('rl_zoo3', '')} hyperparams/ppo.yml {task.zoo_entry}"
    if spec.algo == "gpg-ppo-entry":
        for key in CRITIC_KEYS:
            entry.pop(key, None)
        if "policy_kwargs" in entry:
            entry["policy_kwargs"] = entry["policy_kwargs"].replace("vf=[256, 256]", "vf=[]")
        source += ", minus the critic's keys"
    return entry, source


def _manager(spec: ZooRunSpec, folder: str) -> Any:
    import yaml
    from rl_zoo3.exp_manager import ExperimentManager

    from sb3_gpg import zoo

    zoo.register()
    task, profile = TASKS[spec.task], PROFILES[spec.profile]
    entry, _ = _entry(spec, task)
    config = os.path.join(folder, "entry.yml")
    Path(config).write_text(yaml.safe_dump({task.env_id: entry}))
    algo = "ppo" if spec.algo == "ppo" else "gpg"
    manager_class = ExperimentManager if algo == "ppo" else zoo.GPGExperimentManager
    args = argparse.Namespace(algo=algo, env=task.env_id, seed=spec.seed, suite_run=spec.variant)
    return manager_class(
        args,
        algo,
        task.env_id,
        folder,
        n_timesteps=budget(task, profile),
        eval_freq=-1,
        hyperparams=dict(spec.options) or None,
        seed=spec.seed,
        log_interval=-1,  # the Zoo's command-line default (the class default, 0, divides by zero in learn)
        verbose=0,
        device="cpu",
        config=config,
    )


def _curve_callback() -> Any:
    """Training-episode returns (raw, from Monitor) at each rollout's end: the learning curve."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Curve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.curve: dict[str, list[Any]] = dict(timesteps=[], ep_return=[], episodes=[])
            self._returns: list[float] = []

        def _on_step(self) -> bool:
            for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
                if done and "episode" in info:
                    self._returns.append(float(info["episode"]["r"]))
            return True

        def _on_rollout_end(self) -> None:
            self.curve["timesteps"].append(int(self.num_timesteps))
            self.curve["ep_return"].append(float(np.mean(self._returns)) if self._returns else None)
            self.curve["episodes"].append(len(self._returns))
            self._returns = []

    return Curve()


def evaluate(manager: Any, model: Any, seed: int, episodes: int) -> tuple[list[float], list[int]]:
    """The final policy, deterministic, on a fresh env made like the Zoo's evaluation env: with the training
    ``VecNormalize``'s observation statistics, frozen, and raw rewards (Monitor's)."""
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    env = manager.create_envs(1, eval_env=True, no_log=True)
    trained = model.get_vec_normalize_env()
    if isinstance(env, VecNormalize) and trained is not None:
        env.obs_rms = trained.obs_rms
        env.training, env.norm_reward = False, False
    env.seed(1_000_000 + 1000 * seed)  # disjoint from the training seeds
    returns, lengths = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
    env.close()
    return [float(r) for r in returns], [int(n) for n in lengths]


def run_zoo(spec: ZooRunSpec, progress_position: int = 0) -> dict[str, Any]:
    """Train one run through the Zoo's experiment manager and evaluate it; return its record."""
    import torch as th

    th.set_num_threads(1)
    task, profile = TASKS[spec.task], PROFILES[spec.profile]
    with tempfile.TemporaryDirectory(prefix="zoo_suite_") as folder:
        manager = _manager(spec, folder)
        model, saved_hyperparams = manager.setup_experiment()
        curve = _curve_callback()
        manager.callbacks.append(curve)
        start = time.perf_counter()
        manager.learn(model)
        train_seconds = time.perf_counter() - start
        returns, lengths = evaluate(manager, model, spec.seed, profile.eval_episodes)
    _, source = _entry(spec, task)
    return dict(
        spec=spec.to_json(),
        env_id=task.env_id,
        hyperparameters_source=source,
        hyperparameters=json.loads(json.dumps(saved_hyperparams, default=str)),
        budget=budget(task, profile),
        env_steps=int(model.num_timesteps),
        curve=curve.curve,
        eval=dict(returns=returns, lengths=lengths, deterministic=True),
        train_seconds=train_seconds,
        steps_per_second=model.num_timesteps / train_seconds,
        **provenance(),
    )


def parse_variants(occurrences: Sequence[Sequence[str]] | None) -> list[tuple[tuple[str, Any], ...]]:
    """The option sets of ``--options`` (each occurrence one variant; an empty one is the entry as it is)."""
    found = []
    for texts in occurrences or [[]]:
        pairs = []
        for text in texts:
            name, separator, value = text.partition("=")
            if not separator:
                raise ValueError(f"--options takes key=value pairs, got {text!r}.")
            pairs.append((name, parse_value(value)))
        found.append(tuple(pairs))
    return found


def score(record: Mapping[str, Any]) -> float:
    """A run's score: the mean return of its evaluation episodes."""
    return float(np.mean(record["eval"]["returns"]))
