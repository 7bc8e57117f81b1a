"""Shared harness of the learning benchmark (``learning.py``) and the binning ablation (``ablation.py``).

One run = one algorithm (GPG or SB3's PPO) trained for a fixed number of iterations (rollout + update) on one
task with one env count and one seed, then evaluated deterministically. :func:`run_one` does a run and returns a
JSON-ready record; :func:`run_sweep` runs a list of :class:`RunSpec` in worker processes, writes one JSON file per
finished run (atomically) and skips runs whose file exists, so a sweep resumes where it stopped.

Hyperparameters (``../shared/GPG-SPEC.md``, "Hyperparameter sources", the paper's Appendix B) are one set per task,
shared by GPG and PPO; PPO additionally gets its critic's settings (``gae_lambda`` from the source, ``vf_coef``
0.5). Profiles (``paper``, ``reduced``) change only the rollout length, env counts, seeds and eval episodes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
ALGOS = ("gpg", "ppo")

# CliffWalking-v1 is registered without a time limit, and a random policy needs thousands of steps to find the
# goal: without a limit, early rollouts (and a deterministic evaluation of a policy that walks into a wall) never
# end. 200 steps is long enough for every path to the goal (the cliff-edge path takes 13 steps, the paper's -17 is
# the safe path along the top row, 17 steps) and short enough that an episode ends within ~2 rollouts.
CLIFF_TIME_LIMIT = 200


@dataclass(frozen=True)
class Task:
    """One benchmark task and its shared (GPG and PPO) hyperparameters, from the paper's sources."""

    env_id: str
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

    def batch_size(self, n_envs: int, n_steps: int) -> int:
        """Minibatch size: ``n_minibatches`` per epoch as at the source, never below ``min_batch_size``."""
        return max(self.min_batch_size, n_envs * n_steps // self.n_minibatches, 1)


TASKS: dict[str, Task] = {
    "cartpole": Task(
        "CartPole-v1", "CleanRL ppo.py defaults", n_steps=128, learning_rate=2.5e-4, anneal_lr=True, gamma=0.99,
        n_epochs=4, n_minibatches=4, min_batch_size=1, ent_coef=0.01, gae_lambda=0.95,
    ),
    "cliffwalking": Task(
        "CliffWalking-v1", "CleanRL ppo.py defaults", n_steps=128, learning_rate=2.5e-4, anneal_lr=True, gamma=0.99,
        n_epochs=4, n_minibatches=4, min_batch_size=1, ent_coef=0.01, gae_lambda=0.95, time_limit=CLIFF_TIME_LIMIT,
    ),
    # RL Zoo: 16 envs x 1024 steps in minibatches of 64 = 256 minibatches per epoch. Keeping the batch at 64 for
    # 128 envs would mean 2048 minibatches per epoch (8x the gradient steps of the source); keeping 256 minibatches
    # would shrink the batch to 4 at 1 env. The rule "256 minibatches, but never smaller than 64" is the source's
    # setting at 16 envs and its batch size below.
    "lunarlander": Task(
        "LunarLander-v3", "RL Zoo ppo.yml LunarLander-v3", n_steps=1024, learning_rate=3e-4, anneal_lr=False,
        gamma=0.999, n_epochs=4, n_minibatches=256, min_batch_size=64, ent_coef=0.01, gae_lambda=0.98,
    ),
    "halfcheetah": Task(
        "HalfCheetah-v5", "CleanRL ppo_continuous_action.py defaults", n_steps=2048, learning_rate=3e-4,
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


PAPER_ENV_COUNTS = (1, 4, 16, 32, 128)
PROFILES: dict[str, Profile] = {
    "paper": Profile(
        "paper",
        "the paper's protocol: 200 iterations, the sources' rollout lengths, 1-128 envs, 4 seeds x 5 eval episodes",
        iterations=200,
        seeds=(0, 1, 2, 3),
        eval_episodes=5,
        n_steps={name: task.n_steps for name, task in TASKS.items()},
        env_counts=dict.fromkeys(TASKS, PAPER_ENV_COUNTS),
    ),
    # Sized from `learning.py throughput` on the 2-core development machine (benchmarks/RESULTS.md): about 6 CPU
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
    # A check of the harness in about a minute, not a benchmark.
    "smoke": Profile(
        "smoke",
        "harness check: 3 iterations of 16 steps, 1 and 4 envs, 1 seed x 2 eval episodes",
        iterations=3,
        seeds=(0,),
        eval_episodes=2,
        n_steps=dict.fromkeys(TASKS, 16),
        env_counts=dict.fromkeys(TASKS, (1, 4)),
    ),
}


def check_choice(kind: str, value: str, valid: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``valid``, else raise a ValueError naming both."""
    valid = list(valid)
    if value not in valid:
        raise ValueError(f"Unknown {kind} {value!r}: valid {kind}s are {', '.join(valid)}.")
    return value


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run; its result file's path is a function of it."""

    task: str
    algo: str
    n_envs: int
    seed: int
    profile: str
    binning: str = "time"  # GPG only
    bin_size: float = 1.0  # GPG only, space / space_time
    collection: str = "window"  # GPG only

    @property
    def variant(self) -> str:
        """``default`` for GPG's defaults (and PPO), else e.g. ``space_time-0.5`` or ``time-episodes``."""
        if self.algo == "ppo" or (self.binning, self.collection) == ("time", "window"):
            return "default"
        name = self.binning if self.binning not in ("space", "space_time") else f"{self.binning}-{self.bin_size:g}"
        return name if self.collection == "window" else f"{name}-{self.collection}"

    @property
    def name(self) -> str:
        return f"{self.task}/{self.algo}/{self.variant}/n{self.n_envs}/s{self.seed}"

    def path(self, root: Path = RESULTS) -> Path:
        """Result file. GPG with its defaults is a learning-benchmark run even when the ablation asks for it, so
        the ablation's "time binning, window" cells reuse the learning sweep's runs instead of repeating them."""
        if self.variant == "default":
            return root / "learning" / self.profile / self.task / f"{self.algo}_n{self.n_envs}_s{self.seed}.json"
        return root / "ablation" / self.profile / self.task / f"{self.variant}_n{self.n_envs}_s{self.seed}.json"


def hyperparameters(spec: RunSpec) -> dict[str, Any]:
    """Constructor arguments of the run's model (JSON-ready: the learning rate schedule as a string)."""
    task, profile = TASKS[spec.task], PROFILES[spec.profile]
    n_steps = profile.n_steps[spec.task]
    params: dict[str, Any] = dict(
        n_steps=n_steps,
        batch_size=task.batch_size(spec.n_envs, n_steps),
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
        params.update(binning=spec.binning, bin_size=spec.bin_size, collection=spec.collection)
    return params


def _learning_rate(value: str | float) -> float | Callable[[float], float]:
    if isinstance(value, str) and value.startswith("lin_"):
        initial = float(value[4:])
        return lambda progress_remaining: progress_remaining * initial
    return float(value)


def make_env(task: Task, n_envs: int, seed: int):
    """Training envs: SB3's DummyVecEnv of Monitor-wrapped envs (the same backend for GPG and PPO)."""
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    def single() -> gym.Env:
        env = gym.make(task.env_id)
        return gym.wrappers.TimeLimit(env, task.time_limit) if task.time_limit else env

    venv = make_vec_env(single, n_envs=n_envs, seed=seed)
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
        env = gym.make(task.env_id)
        if task.time_limit:
            env = gym.wrappers.TimeLimit(env, task.time_limit)
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


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=BENCHMARKS, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_dirty() -> list[str]:
    """Uncommitted changes to the package the run used (the sweep runs against an editable install)."""
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "sb3_gpg"],
            cwd=BENCHMARKS.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line[3:] for line in status.splitlines()]


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def build_model(spec: RunSpec) -> Any:
    """The run's GPG or PPO model on its training envs, torch pinned to one thread."""
    import torch as th
    from stable_baselines3 import PPO

    from sb3_gpg import GPG

    # Small MLPs run fastest on one thread, and two runs with torch's default threads oversubscribe 2 cores badly.
    th.set_num_threads(1)
    task = TASKS[spec.task]
    params = hyperparameters(spec)
    if spec.algo == "gpg" and spec.collection == "episodes" and task.anneal_lr:
        # Rollouts of whole episodes vary in length, so a schedule over a step budget would not end at iteration 200.
        raise ValueError(f"collection='episodes' needs a constant learning rate; {spec.task} anneals it.")
    env = make_env(task, spec.n_envs, spec.seed)
    algo_class = GPG if check_choice("algo", spec.algo, ALGOS) == "gpg" else PPO
    params["learning_rate"] = _learning_rate(params["learning_rate"])
    return algo_class("MlpPolicy", env, seed=spec.seed, device="cpu", **params)


def run_one(spec: RunSpec, progress_position: int = 0, iterations: int | None = None) -> dict[str, Any]:
    """Train and evaluate one run; return its record (spec, hyperparameters, curve, evaluation, timing).

    :param spec: The run.
    :param progress_position: Line of its progress bar (one per worker).
    :param iterations: Rollout + update iterations; default the profile's (``groupsize.py`` sets it from an
        env-step budget). A linearly annealed learning rate reaches 0 at the last one either way.
    """
    import torch as th
    from tqdm import tqdm

    task, profile = TASKS[spec.task], PROFILES[spec.profile]
    iterations = profile.iterations if iterations is None else iterations
    if iterations < 1:
        raise ValueError(f"{spec.name}: iterations must be at least 1, got {iterations}.")
    params = hyperparameters(spec)
    model = build_model(spec)
    env = model.get_env()
    total_timesteps = iterations * spec.n_envs * params["n_steps"]
    if spec.collection == "episodes":
        total_timesteps *= 1000  # the callback stops after `iterations` rollouts; whole-episode rollouts are longer
    with tqdm(total=iterations, desc=spec.name, position=progress_position, leave=False,
              mininterval=5.0, unit="it", dynamic_ncols=True) as progress:  # fmt: skip
        callback = _make_curve_callback(iterations, progress)
        start = time.perf_counter()
        model.learn(total_timesteps, callback=callback)
        train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    returns, lengths = evaluate(model, task, spec.seed, profile.eval_episodes)
    eval_seconds = time.perf_counter() - start
    env.close()
    curve = callback.curve
    if len(curve["timesteps"]) != iterations:
        raise RuntimeError(f"{spec.name}: trained {len(curve['timesteps'])} iterations, expected {iterations}")
    return dict(
        spec=dataclasses.asdict(spec),
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
        versions=versions(),
        git_commit=git_commit(),
        git_dirty=git_dirty(),
        machine=machine(),
        torch_threads=th.get_num_threads(),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write atomically: a reader (or a restarted sweep) sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def _worker(job: tuple[Any, Path, int, Callable[[Any, int], dict[str, Any]]]) -> tuple[str, str | None]:
    """Run one job, ``(run, root, workers, runner)``, in a worker process and write the record that
    ``runner(run, progress_position)`` returns; return (name, error or None)."""
    run, root, workers, runner = job
    identity = mp.current_process()._identity  # 1-based and growing as processes are replaced
    position = 1 + (identity[0] - 1) % workers if identity else 1  # one progress line per worker slot
    if run.path(root).exists():  # finished meanwhile by another sweep sharing this run (variants.py, ablation.py)
        return run.name, None
    try:
        write_json(run.path(root), runner(run, position))
        return run.name, None
    except Exception:  # one failed run must not stop the sweep; the error goes to the log
        return run.name, traceback.format_exc()


def run_sweep(runs: Sequence[Any], workers: int = 1, root: Path = RESULTS,
              runner: Callable[[Any, int], dict[str, Any]] = run_one) -> int:  # fmt: skip
    """Run every run whose result file is missing, in ``workers`` processes, in the given order.

    :param runs: :class:`RunSpec` or anything else with a ``name`` and a ``path(root)`` (``variants.VariantRun``,
        ``groupsize.BudgetRun``), hashable and picklable.
    :param workers: Parallel worker processes.
    :param root: Results root.
    :param runner: Module-level function ``runner(run, progress_position) -> record``; default :func:`run_one`.
    :return: The number of failed runs.
    """
    from tqdm import tqdm

    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}.")
    unique = list(dict.fromkeys(runs))  # the ablation's default-GPG runs are the learning sweep's
    todo = [run for run in unique if not run.path(root).exists()]
    print(f"{len(unique)} runs in the sweep, {len(unique) - len(todo)} already done, {len(todo)} to run "
          f"with {workers} worker(s).", flush=True)  # fmt: skip
    failures = 0
    # spawn: a fresh interpreter per worker (no forked torch state); one run per process, so a leak or a crash in
    # a run ends with it and loses at most that run.
    context = mp.get_context("spawn")
    jobs = [(run, root, workers, runner) for run in todo]
    with context.Pool(workers, maxtasksperchild=1) as pool, tqdm(total=len(todo), desc="sweep", position=0,
                                                                   unit="run", mininterval=5.0) as bar:  # fmt: skip
        for name, error in pool.imap_unordered(_worker, jobs):
            bar.update(1)
            if error:
                failures += 1
                tqdm.write(f"FAILED {name}:\n{error}")
            else:
                tqdm.write(f"{time.strftime('%H:%M:%S')} done {name}")
    return failures


def sweep_parser(doc: str, helps: dict[str, str], tasks: Sequence[str], sizes: Sequence[int], section: str,
                 extra: Callable[[argparse.ArgumentParser, str], None] | None = None) -> argparse.ArgumentParser:  # fmt: skip
    """Command line of a sweep script (``variants.py``, ``groupsize.py``): one sub-command per entry of ``helps``
    (``plan``, ``run``, ``report``), each with ``--profile --tasks --envs --seeds --out``, ``run`` with
    ``--workers``, ``report`` with ``--results-md`` (whose ``section`` it rewrites); ``extra(command, name)`` adds
    the script's own arguments."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in helps.items():
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--profile", default="reduced", help=f"protocol: {', '.join(PROFILES)} (default reduced)")
        command.add_argument("--tasks", nargs="+", default=list(tasks), help=f"tasks (default {' '.join(tasks)})")
        command.add_argument("--envs", type=int, nargs="+", default=list(sizes),
                             help=f"group sizes (default {' '.join(map(str, sizes))})")  # fmt: skip
        command.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: the profile's)")
        command.add_argument("--out", type=Path, default=RESULTS, help="results root (default benchmarks/results)")
        if name == "run":
            command.add_argument("--workers", type=int, default=1, help="parallel run processes (default 1)")
        if name == "report":
            command.add_argument("--results-md", type=Path, default=RESULTS.parent / "RESULTS.md",
                                 help=f"markdown file whose {section!r} section is rewritten")  # fmt: skip
        if extra is not None:
            extra(command, name)
    return parser


def parse_sweep_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and check ``--profile`` and ``--tasks`` (``seeds`` stays None unless given: the script's default)."""
    args = parser.parse_args(argv)
    check_choice("profile", args.profile, PROFILES)
    for task in args.tasks:
        check_choice("task", task, TASKS)
    return args


def load_results(root: Path = RESULTS) -> dict[RunSpec, dict[str, Any]]:
    """Every finished learning-benchmark and ablation run's record under ``root``, keyed by its spec (other
    benchmarks' result folders beside them are not read)."""
    results = {}
    for path in sorted(p for kind in ("learning", "ablation") for p in (root / kind).glob("**/*.json")):
        record = json.loads(path.read_text())
        if "spec" in record:
            results[RunSpec(**record["spec"])] = record
    return results


def interval_estimate(scores: np.ndarray, seed: int = 0, reps: int = 2000) -> tuple[float, float, float]:
    """IQM of ``scores`` and its 95% percentile-bootstrap CI, with rliable. All eval episodes of all training seeds
    are pooled as one task's runs, as the paper pools them for mean ± std.

    ``rliable.library`` imports ``arch``, and no ``arch`` release works with both rliable 1.2 and pandas 3 (arch 7.2
    fails to import under pandas 3, arch 8 refuses rliable's ``random_state`` argument). Where it cannot be imported,
    the same bootstrap (rliable's stratified bootstrap reduces to resampling the runs when there is one task) is done
    here around ``rliable.metrics.aggregate_iqm``.
    """
    from rliable import metrics

    matrix = np.asarray(scores, dtype=float).reshape(-1, 1)
    try:
        from rliable import library as rly
    except (ImportError, TypeError):
        rly = None
    if rly is not None:
        # rliable's StratifiedBootstrap draws its resampling indices from numpy's global generator whatever
        # random_state says: seed that too (and restore it), or the same scores give a different CI on every call.
        global_state = np.random.get_state()
        np.random.seed(seed)
        try:
            with warnings.catch_warnings():  # arch's notice that rliable passes the old random_state argument
                warnings.simplefilter("ignore", FutureWarning)
                points, intervals = rly.get_interval_estimates(
                    {"x": matrix}, metrics.aggregate_iqm, reps=reps, random_state=np.random.RandomState(seed)
                )
        finally:
            np.random.set_state(global_state)
        low, high = np.ravel(intervals["x"])
        return float(np.ravel(points["x"])[0]), float(low), float(high)
    rng = np.random.default_rng(seed)
    resampled = [metrics.aggregate_iqm(matrix[rng.integers(0, len(matrix), len(matrix))]) for _ in range(reps)]
    low, high = np.percentile(resampled, [2.5, 97.5])
    return float(metrics.aggregate_iqm(matrix)), float(low), float(high)


def format_cell(scores: Sequence[float]) -> str:
    """``mean ± std (IQM [lo, hi])`` of pooled evaluation returns."""
    scores = np.asarray(scores, dtype=float)
    iqm, low, high = interval_estimate(scores)
    return f"{scores.mean():.1f} ± {scores.std():.1f} ({iqm:.1f} [{low:.1f}, {high:.1f}])"


def filled_curve(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, return) per iteration; an iteration in which no episode ended repeats the last known return
    (NaN before the first)."""
    steps = np.asarray(record["curve"]["timesteps"], dtype=float)
    values = np.array([math.nan if v is None else v for v in record["curve"]["ep_return"]], dtype=float)
    for i in range(1, len(values)):
        if math.isnan(values[i]):
            values[i] = values[i - 1]
    return steps, values


def command_line() -> str:
    """The command that is running, as one would type it from the repository root."""
    import shlex

    script = Path(sys.argv[0]).resolve()
    try:
        script_name = str(script.relative_to(BENCHMARKS.parent))
    except ValueError:
        script_name = str(script)
    return "python " + " ".join(shlex.quote(a) for a in [script_name, *sys.argv[1:]])


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def replace_section(path: Path, heading: str, body: str, intro: str, after: str | None = None) -> None:
    """Replace the ``## heading`` section of a markdown file (up to the next ``## ``), keeping the others; a new
    section goes right after the ``## after`` section if there is one, else at the end. A missing file is created
    with ``intro``."""
    text = path.read_text() if path.exists() else intro.rstrip() + "\n"
    section = f"## {heading}\n\n{body.strip()}\n"
    parts = text.split("\n## ")  # parts[0] is the intro; every other part is "heading\n...", its "## " split off
    headings = [part.split("\n", 1)[0].strip() for part in parts[1:]]
    new_part = section[3:].rstrip("\n") + "\n"
    if heading in headings:
        parts[1 + headings.index(heading)] = new_part
    elif after in headings:
        parts.insert(2 + headings.index(after), new_part)
    else:
        parts.append(new_part)
    text = "\n## ".join(part if i == len(parts) - 1 else part.rstrip("\n") + "\n" for i, part in enumerate(parts))
    path.write_text(text)


def with_notes(body: str, out: Path) -> str:
    """``body`` followed by ``out/notes.md``, the hand-written reading of the numbers kept next to them, if any."""
    notes = out / "notes.md"
    return body + "\n" + notes.read_text().strip() + "\n" if notes.exists() else body


@dataclass
class CellScores:
    """Evaluation returns of one table cell, pooled over its finished runs."""

    expected: int
    scores: list[float] = field(default_factory=list)
    runs: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.scores.extend(record["eval"]["returns"])
        self.runs += 1

    def text(self) -> str:
        if self.runs == 0:
            return f"pending (0/{self.expected} runs)"
        cell = format_cell(self.scores)
        return cell if self.runs >= self.expected else f"{cell}, pending ({self.runs}/{self.expected} runs)"
