"""The harness of the learning-style suites (learning, ablation, variants, groupsize, cliffwalking).

One run = one algorithm (GPG or SB3's PPO) trained for a number of iterations (rollout + update) on one task with one
env count and one seed, then evaluated deterministically: :func:`run_one` does a run described by a :class:`RunSpec`
and returns a JSON-ready record. :mod:`benchmarks.sweep` runs lists of them and keeps one result file per run.

Hyperparameters (the paper's Appendix B, arXiv 2510.03679) are one set per task,
shared by GPG and PPO; PPO additionally gets its critic's settings (``gae_lambda`` from the source, ``vf_coef``
0.5). Profiles (``paper``, ``reduced``, ``smoke``) change only the rollout length, env counts, seeds and eval
episodes.
"""

from __future__ import annotations

import functools
import math
import platform
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import machine

ALGOS = ("gpg", "ppo")
#: GPG's constructor options beyond the ones every run spec names (``binning``, ``bin_size``, ``collection``).
GPG_OPTIONS = ("baseline", "advantage_scale", "min_bin_samples", "bin_fallback", "signal_rescale", "objective")

# CliffWalking-v1 is registered without a time limit, and a random policy needs thousands of steps to find the
# goal: without a limit, early rollouts (and a deterministic evaluation of a policy that walks into a wall) never
# end. 200 steps is long enough for every path to the goal (the cliff-edge path takes 13 steps, the paper's -17 is
# the safe path along the top row, 17 steps) and short enough that an episode ends within ~2 rollouts.
CLIFF_TIME_LIMIT = 200


def check_choice(kind: str, value: str, valid: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``valid``, else raise a ValueError naming both."""
    valid = list(valid)
    if value not in valid:
        raise ValueError(f"Unknown {kind} {value!r}: valid {kind}s are {', '.join(map(repr, valid))}.")
    return value


@dataclass(frozen=True)
class Task:
    """One benchmark task and its shared (GPG and PPO) hyperparameters, from the paper's sources."""

    env_id: str
    title: str  # in tables
    source: str  # where the hyperparameters come from
    n_steps: int  # steps per env per rollout in the paper's protocol
    learning_rate: float
    anneal_lr: bool  # linear decay to 0 over the run (CleanRL's default), else constant (RL Zoo's)
    gamma: float
    n_epochs: int
    n_minibatches: int  # minibatches per epoch at the source's env count, kept constant across env counts
    min_batch_size: int  # floor on the minibatch size (LunarLander: the Zoo's batch of 64)
    ent_coef: float
    gae_lambda: float  # PPO only (the critic's)
    normalize: bool = False  # VecNormalize: observations and rewards, clipped at 10 (CleanRL continuous)
    time_limit: int | None = None  # extra gymnasium TimeLimit (CliffWalking)
    clip_range: float = 0.2
    max_grad_norm: float = 0.5
    # gymnasium wrappers around each env, inside the TimeLimit, in training and evaluation (the CliffWalking check)
    wrappers: tuple[Callable[[Any], Any], ...] = field(default=(), repr=False)

    def batch_size(self, n_envs: int, n_steps: int) -> int:
        """Minibatch size: ``n_minibatches`` per epoch as at the source, never below ``min_batch_size``."""
        return max(self.min_batch_size, n_envs * n_steps // self.n_minibatches, 1)

    def make(self) -> Any:
        """One env of the task, as training and evaluation both see it."""
        import gymnasium as gym

        env = gym.make(self.env_id)
        for wrapper in self.wrappers:
            env = wrapper(env)
        return gym.wrappers.TimeLimit(env, self.time_limit) if self.time_limit else env


TASKS: dict[str, Task] = {
    "cartpole": Task(
        "CartPole-v1", "CartPole", "CleanRL ppo.py defaults", n_steps=128, learning_rate=2.5e-4, anneal_lr=True,
        gamma=0.99, n_epochs=4, n_minibatches=4, min_batch_size=1, ent_coef=0.01, gae_lambda=0.95,
    ),
    "cliffwalking": Task(
        "CliffWalking-v1", "CliffWalking", "CleanRL ppo.py defaults", n_steps=128, learning_rate=2.5e-4,
        anneal_lr=True, gamma=0.99, n_epochs=4, n_minibatches=4, min_batch_size=1, ent_coef=0.01, gae_lambda=0.95,
        time_limit=CLIFF_TIME_LIMIT,
    ),
    # RL Zoo: 16 envs x 1024 steps in minibatches of 64 = 256 minibatches per epoch. Keeping the batch at 64 for
    # 128 envs would mean 2048 minibatches per epoch (8x the gradient steps of the source); keeping 256 minibatches
    # would shrink the batch to 4 at 1 env. The rule "256 minibatches, but never smaller than 64" is the source's
    # setting at 16 envs and its batch size below.
    "lunarlander": Task(
        "LunarLander-v3", "LunarLander", "RL Zoo ppo.yml LunarLander-v3", n_steps=1024, learning_rate=3e-4,
        anneal_lr=False, gamma=0.999, n_epochs=4, n_minibatches=256, min_batch_size=64, ent_coef=0.01, gae_lambda=0.98,
    ),
    "halfcheetah": Task(
        "HalfCheetah-v5", "HalfCheetah", "CleanRL ppo_continuous_action.py defaults", n_steps=2048, learning_rate=3e-4,
        anneal_lr=True, gamma=0.99, n_epochs=10, n_minibatches=32, min_batch_size=1, ent_coef=0.0, gae_lambda=0.95,
        normalize=True,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Profile:
    """A benchmark protocol: what the paper ran, or a smaller version of it."""

    name: str
    description: str
    iterations: int
    seeds: tuple[int, ...]
    eval_episodes: int
    n_steps: dict[str, int]  # per task
    env_counts: dict[str, tuple[int, ...]]  # per task
    publish: bool = True  # whether its reports replace their section of RESULTS.md
    # Training envs, GPG's and PPO's alike: "dummy" (SB3's DummyVecEnv of Monitor-wrapped gymnasium envs) or
    # "envpool" (envpool's C++ envs behind sb3_gpg.vec_env, with the same episode bookkeeping). Evaluation always
    # runs the gymnasium env.
    backend: str = "dummy"


PAPER_ENV_COUNTS = (1, 4, 16, 32, 128)
PROFILES: dict[str, Profile] = {
    # The paper's protocol where the reduced profile shrinks it (its CartPole and CliffWalking are the paper's
    # already): LunarLander at 64 and 128 envs x 1024 steps, HalfCheetah at 16 and 32 envs x 2048 steps, on envpool
    # (a batched backend is what makes 128 envs affordable on 2 cores; both algorithms train on it).
    "paper": Profile(
        "paper",
        "the paper's protocol: 200 iterations, the sources' rollout lengths (LunarLander 1024, HalfCheetah 2048 steps "
        "per env), 4 seeds x 5 eval episodes, LunarLander at 64 and 128 envs, HalfCheetah at 16 and 32, on envpool",
        iterations=200,
        seeds=(0, 1, 2, 3),
        eval_episodes=5,
        n_steps={"lunarlander": 1024, "halfcheetah": 2048},
        env_counts={"lunarlander": (64, 128), "halfcheetah": (16, 32)},
        backend="envpool",
        publish=False,  # its cells join the reduced profile's table (the "paper protocol" rows)
    ),
    # Sized from `learning throughput` on the 2-core development machine (benchmarks/RESULTS.md): about 6 CPU
    # hours for the learning sweep and the ablation together, i.e. ~3 hours with 2 workers. LunarLander at 128 envs
    # alone would add 2.3 CPU hours, HalfCheetah at 32 and 128 envs ~10.
    "reduced": Profile(
        "reduced",
        "200 iterations; 2 seeds (0, 1) x 5 eval episodes; 256 steps per env per rollout for LunarLander (paper 1024) "
        "and HalfCheetah (paper 2048), CartPole and CliffWalking keep 128; LunarLander at 1-32 envs, HalfCheetah at "
        "1-16 envs, CartPole and CliffWalking at all of 1-128",
        iterations=200,
        seeds=(0, 1),
        eval_episodes=5,
        n_steps={"cartpole": 128, "cliffwalking": 128, "lunarlander": 256, "halfcheetah": 256},
        env_counts={
            "cartpole": PAPER_ENV_COUNTS,
            "cliffwalking": PAPER_ENV_COUNTS,
            "lunarlander": (1, 4, 16, 32),
            "halfcheetah": (1, 4, 16),
        },
    ),
    # A check of the harness in about a minute, not a benchmark: its reports never replace a published section.
    "smoke": Profile(
        "smoke",
        "harness check: 3 iterations of 16 steps, 1 and 4 envs, 1 seed x 2 eval episodes",
        iterations=3,
        seeds=(0,),
        eval_episodes=2,
        n_steps=dict.fromkeys(TASKS, 16),
        env_counts=dict.fromkeys(TASKS, (1, 4)),
        publish=False,
    ),
}


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run. Its record stores it under ``spec`` (:meth:`to_json`).

    :param options: GPG's constructor options beyond ``binning``, ``bin_size`` and ``collection`` (names from
        ``GPG_OPTIONS``), as ``(name, value)`` pairs; a mapping is accepted too. Kept sorted by name, so that equal
        options make equal specs.
    :param iterations: Rollout + update iterations; None (also what a value equal to the profile's becomes) for the
        profile's. A linearly annealed learning rate reaches 0 at the last one either way.
    """

    task: str
    algo: str
    n_envs: int
    seed: int
    profile: str
    binning: str = "time"  # GPG only
    bin_size: float = 1.0  # GPG only, space / space_time
    collection: str = "window"  # GPG only
    options: tuple[tuple[str, Any], ...] = ()
    iterations: int | None = None

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        check_choice("algo", self.algo, ALGOS)
        check_choice("profile", self.profile, PROFILES)
        if self.n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {self.n_envs}.")
        pairs = self.options.items() if isinstance(self.options, Mapping) else self.options
        options = tuple(sorted((str(name), value) for name, value in pairs))
        for name, value in options:
            check_choice("GPG option", name, GPG_OPTIONS)
            if not isinstance(value, str | int | float | bool):
                raise ValueError(f"GPG option {name}={value!r}: values are str, int, float or bool, got {type(value)}.")
        if options and self.algo != "gpg":
            raise ValueError(f"GPG options {dict(options)} given to a {self.algo} run; only gpg runs take them.")
        object.__setattr__(self, "options", options)
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations must be at least 1 (or None for the profile's), got {self.iterations}.")
        if self.iterations == PROFILES[self.profile].iterations:
            object.__setattr__(self, "iterations", None)

    @property
    def training_iterations(self) -> int:
        return PROFILES[self.profile].iterations if self.iterations is None else self.iterations

    @property
    def n_steps(self) -> int:
        return PROFILES[self.profile].n_steps[self.task]

    @property
    def variant(self) -> str:
        """``default`` for GPG's defaults (and PPO), else e.g. ``space_time-0.5`` or ``time-episodes``."""
        if self.algo == "ppo" or (self.binning, self.collection) == ("time", "window"):
            return "default"
        name = self.binning if self.binning not in ("space", "space_time") else f"{self.binning}-{self.bin_size:g}"
        return name if self.collection == "window" else f"{name}-{self.collection}"

    @property
    def result_file(self) -> str:
        """Result file of a plain run (no options, the profile's iterations), relative to the results root. GPG
        with its defaults is a learning-benchmark run whichever suite asks for it, so the ablation's "time binning,
        window" cells reuse the learning sweep's runs instead of repeating them; other binnings and collections are
        the ablation's. A suite that runs other specs names their files itself."""
        if self.options or self.iterations is not None:
            raise ValueError(f"{self} has options or its own iterations: its suite names its result file.")
        kind, stem = ("learning", self.algo) if self.variant == "default" else ("ablation", self.variant)
        return f"{kind}/{self.profile}/{self.task}/{stem}_n{self.n_envs}_s{self.seed}.json"

    def to_json(self) -> dict[str, Any]:
        """The record's ``spec``: the plain fields always, ``options`` and ``iterations`` when set (so that records
        of plain runs keep the format of the ones written before these existed)."""
        data: dict[str, Any] = dict(
            task=self.task, algo=self.algo, n_envs=self.n_envs, seed=self.seed, profile=self.profile,
            binning=self.binning, bin_size=self.bin_size, collection=self.collection,
        )  # fmt: skip
        if self.options:
            data["options"] = [list(pair) for pair in self.options]
        if self.iterations is not None:
            data["iterations"] = self.iterations
        return data

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RunSpec:
        """The spec a record was made from, also from the formats written before options and iterations were part
        of the spec: the estimator-variants records (``harness_spec`` and ``variant.options``) and the group-size
        records (the iterations only at the top level)."""
        stored = record["spec"] if "spec" in record else record["harness_spec"]
        if not isinstance(stored, Mapping):
            raise ValueError(f"its spec is not an object: {stored!r}")
        fields = dict(stored)
        if "options" not in fields and isinstance(record.get("variant"), Mapping):
            fields["options"] = record["variant"].get("options", {})
        fields.setdefault("iterations", record.get("iterations"))
        try:
            return cls(**fields)
        except TypeError as error:  # an unknown or missing field
            raise ValueError(f"its spec {dict(stored)} is not a run spec: {error}") from None

    def check_record(self, record: Mapping[str, Any]) -> None:
        """Raise a ValueError saying why ``record`` is not a finished run of this spec that reports can read: its
        spec, evaluation returns (finite, one per evaluation episode) and per-iteration curve."""
        try:
            stored = RunSpec.from_record(record)
            returns, lengths = record["eval"]["returns"], record["eval"]["lengths"]
            curve, iterations = record["curve"], record["iterations"]
            steps_per_second = record["steps_per_second"]
            int(record["env_steps"])
        except KeyError as error:
            raise ValueError(f"it has no {error.args[0]!r}") from None
        if stored != self:
            raise ValueError(f"it holds the run {stored}, not {self}")
        episodes = PROFILES[self.profile].eval_episodes
        if not isinstance(returns, list) or len(returns) != episodes or len(lengths) != episodes:
            raise ValueError(f"it has {len(returns)} evaluation returns and {len(lengths)} lengths, not {episodes}")
        if not all(isinstance(value, int | float) and math.isfinite(value) for value in returns):
            raise ValueError(f"its evaluation returns are not all finite numbers: {returns}")
        if iterations != self.training_iterations or any(len(curve[key]) != iterations for key in ("timesteps", "ep_return")):
            raise ValueError(f"its curve does not have the run's {self.training_iterations} iterations")
        if not (isinstance(steps_per_second, int | float) and math.isfinite(steps_per_second)):
            raise ValueError(f"its steps_per_second is {steps_per_second!r}")


def hyperparameters(spec: RunSpec) -> dict[str, Any]:
    """Constructor arguments of the run's model (JSON-ready: the learning rate schedule as a string)."""
    task = TASKS[spec.task]
    params: dict[str, Any] = dict(
        n_steps=spec.n_steps,
        batch_size=task.batch_size(spec.n_envs, spec.n_steps),
        n_epochs=task.n_epochs,
        learning_rate=f"lin_{task.learning_rate:g}" if task.anneal_lr else task.learning_rate,
        gamma=task.gamma,
        clip_range=task.clip_range,
        ent_coef=task.ent_coef,
        max_grad_norm=task.max_grad_norm,
        policy_kwargs=dict(net_arch=[64, 64]),  # SB3's default, 64-64 tanh; PPO's critic gets its own 64-64
    )
    if spec.algo == "ppo":
        params.update(gae_lambda=task.gae_lambda, vf_coef=0.5)
    else:
        params.update(binning=spec.binning, collection=spec.collection, **dict(spec.options))
        if spec.binning in ("space", "space_time"):  # the other binnings have no cells (and warn about a bin_size)
            params["bin_size"] = spec.bin_size
    return params


def _learning_rate(value: str | float) -> float | Callable[[float], float]:
    if isinstance(value, str) and value.startswith("lin_"):
        initial = float(value[4:])
        return lambda progress_remaining: progress_remaining * initial
    return float(value)


def make_env(task: Task, n_envs: int, seed: int, backend: str = "dummy"):
    """Training envs, the same for GPG and PPO: SB3's DummyVecEnv of Monitor-wrapped envs, or envpool's batched
    envs (``backend="envpool"``, for tasks without extra wrappers), VecNormalize on top where the task normalizes."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from sb3_gpg import vec_env

    check_choice("backend", backend, ("dummy", "envpool"))
    if backend == "dummy":
        venv = make_vec_env(task.make, n_envs=n_envs, seed=seed)
    elif task.wrappers or task.time_limit:
        raise ValueError(f"{task.env_id} wraps its env (wrappers or a TimeLimit), which the envpool backend cannot.")
    else:
        venv = vec_env.make_vec_env(task.env_id, n_envs, backend="envpool", seed=seed)
    if task.normalize:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=10.0, clip_reward=10.0, gamma=task.gamma)
    return venv


def evaluate(model: Any, task: Task, seed: int, episodes: int) -> tuple[list[float], list[int]]:
    """Deterministic evaluation on fresh envs, episode ``i`` reset with its own seed. With VecNormalize the
    training statistics are used, frozen; returns are the raw (unnormalized) rewards."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecNormalize

    normalizer = model.get_vec_normalize_env()
    returns, lengths = [], []
    for episode in range(episodes):
        env = task.make()
        obs, _ = env.reset(seed=1_000_000 + 1000 * seed + episode)  # disjoint from the training seeds
        total, length, done = 0.0, 0, False
        while not done:
            model_obs = normalizer.normalize_obs(obs) if isinstance(normalizer, VecNormalize) else obs
            action, _ = model.predict(model_obs, deterministic=True)
            if isinstance(env.action_space, gym.spaces.Discrete):
                action = int(action)  # toy-text envs index tables with the action: a 0-d array is no key
            obs, reward, terminated, truncated, _ = env.step(action)
            total, length, done = total + float(reward), length + 1, terminated or truncated
        env.close()
        returns.append(total)
        lengths.append(length)
    return returns, lengths


def _make_curve_callback(iterations: int, progress: Any):
    """Callback recording, per iteration, the mean return of the training episodes that ended in it, and stopping
    training after ``iterations`` rollouts (needed for ``collection="episodes"``, whose rollouts vary in length)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class CurveCallback(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.curve: dict[str, list[Any]] = dict(timesteps=[], ep_return=[], ep_length=[], episodes=[])
            self._returns: list[float] = []
            self._lengths: list[int] = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:  # Monitor's record of a finished episode (raw rewards, before VecNormalize)
                    self._returns.append(float(info["episode"]["r"]))
                    self._lengths.append(int(info["episode"]["l"]))
            return len(self.curve["timesteps"]) < iterations

        def _on_rollout_end(self) -> None:
            self.curve["timesteps"].append(int(self.num_timesteps))
            self.curve["ep_return"].append(float(np.mean(self._returns)) if self._returns else None)
            self.curve["ep_length"].append(float(np.mean(self._lengths)) if self._lengths else None)
            self.curve["episodes"].append(len(self._returns))
            if self._returns:
                progress.set_postfix(ret=f"{self.curve['ep_return'][-1]:.1f}", refresh=False)
            progress.update(1)
            self._returns, self._lengths = [], []

    return CurveCallback()


def versions() -> dict[str, str]:
    """Versions of the packages a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("sb3-gpg", "stable-baselines3", "torch", "gymnasium", "numpy", "mujoco", "box2d", "rliable"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


REPOSITORY = Path(__file__).resolve().parents[1]


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_dirty() -> list[str]:
    """Uncommitted changes to the package the run used (the sweep runs against an editable install)."""
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "sb3_gpg"], cwd=REPOSITORY, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line[3:] for line in status.splitlines()]


def build_model(spec: RunSpec, task: Task | None = None) -> Any:
    """The run's GPG or PPO model on its training envs, torch pinned to one thread.

    :param task: The task's definition; default ``TASKS[spec.task]`` (the CliffWalking check passes a changed one).
    """
    import torch as th
    from stable_baselines3 import PPO

    from sb3_gpg import GPG

    # Small MLPs run fastest on one thread, and two runs with torch's default threads oversubscribe 2 cores badly.
    th.set_num_threads(1)
    task = TASKS[spec.task] if task is None else task
    params = hyperparameters(spec)
    if spec.algo == "gpg" and spec.collection == "episodes" and task.anneal_lr:
        # Rollouts of whole episodes vary in length, so a schedule over a step budget would not end at iteration 200.
        raise ValueError(f"collection='episodes' needs a constant learning rate; {spec.task} anneals it.")
    env = make_env(task, spec.n_envs, spec.seed, PROFILES[spec.profile].backend)
    algo_class = GPG if spec.algo == "gpg" else PPO
    params["learning_rate"] = _learning_rate(params["learning_rate"])
    return algo_class("MlpPolicy", env, seed=spec.seed, device="cpu", **params)


def run_one(spec: RunSpec, progress_position: int = 0, task: Task | None = None) -> dict[str, Any]:
    """Train and evaluate one run; return its record (spec, hyperparameters, curve, evaluation, timing).

    :param spec: The run.
    :param progress_position: Line of its progress bar (one per worker).
    :param task: The task's definition; default ``TASKS[spec.task]``.
    """
    from tqdm import tqdm

    task = TASKS[spec.task] if task is None else task
    iterations = spec.training_iterations
    params = hyperparameters(spec)
    model = build_model(spec, task)
    env = model.get_env()
    total_timesteps = iterations * spec.n_envs * params["n_steps"]
    if spec.collection == "episodes":
        total_timesteps *= 1000  # the callback stops after `iterations` rollouts; whole-episode rollouts are longer
    name = f"{spec.task}/{spec.algo}/{spec.variant}/n{spec.n_envs}/s{spec.seed}"
    with tqdm(total=iterations, desc=name, position=progress_position, leave=False,
              mininterval=5.0, unit="it", dynamic_ncols=True) as progress:  # fmt: skip
        callback = _make_curve_callback(iterations, progress)
        start = time.perf_counter()
        model.learn(total_timesteps, callback=callback)
        train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    returns, lengths = evaluate(model, task, spec.seed, PROFILES[spec.profile].eval_episodes)
    eval_seconds = time.perf_counter() - start
    env.close()
    curve = callback.curve
    if len(curve["timesteps"]) != iterations:
        raise RuntimeError(f"{name}: trained {len(curve['timesteps'])} iterations, expected {iterations}")
    return dict(
        spec=spec.to_json(),
        env_id=task.env_id,
        hyperparameters_source=task.source,
        hyperparameters=params,
        normalize=task.normalize,
        time_limit=task.time_limit,
        iterations=iterations,
        curve=curve,
        eval=dict(returns=returns, lengths=lengths, deterministic=True),
        env_steps=int(model.num_timesteps),
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        steps_per_second=model.num_timesteps / train_seconds,
        **provenance(),
    )


def provenance() -> dict[str, Any]:
    """Where and with what a run was made: package versions, the commit (and uncommitted changes to the package),
    the machine, torch's threads and when it finished; every record ends with these."""
    import torch as th

    return dict(
        versions=versions(),
        git_commit=git_commit(),
        git_dirty=git_dirty(),
        machine=machine(),
        torch_threads=th.get_num_threads(),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def throughput_file(root: Path, profile: str) -> Path:
    """Where ``python -m benchmarks.learning throughput`` keeps its measurement of a profile."""
    return root / "learning" / profile / "throughput.md"


@functools.cache
def _seconds_per_iteration(path: Path) -> dict[tuple[str, int, str], float]:
    """``(task title, envs, ALGO) -> s/iteration`` from a throughput table; empty if there is none."""
    if not path.exists():
        return {}
    rows = [line.strip().strip("|").split("|") for line in path.read_text().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0]] if rows else []
    if not {"task", "envs", "algo", "s/iteration"} <= set(header):
        raise ValueError(f"{path} has no table with columns task, envs, algo, s/iteration (found {header}).")
    cells = [dict(zip(header, (cell.strip() for cell in row), strict=True)) for row in rows[2:]]
    return {(c["task"], int(c["envs"]), c["algo"]): float(c["s/iteration"]) for c in cells}


def estimate_minutes(spec: RunSpec, root: Path) -> float | None:
    """A run's duration from the measured throughput of its profile (None where it was not measured). Every GPG
    configuration is costed as GPG with time binning: space binnings cost about the same, complete-episode
    collection more (up to one extra episode per env and iteration)."""
    seconds = _seconds_per_iteration(throughput_file(root, spec.profile).resolve())
    per_iteration = seconds.get((TASKS[spec.task].title, spec.n_envs, spec.algo.upper()))
    return None if per_iteration is None else per_iteration * spec.training_iterations / 60
