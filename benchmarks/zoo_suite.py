"""The RL Zoo's task suite: SB3's PPO with the Zoo's own tuned entry against GPG with ours, at equal env steps.

A user who switches from PPO keeps the RL Zoo: the same command line, the same YAML entries. Each run here goes
through the Zoo's own ``ExperimentManager`` (GPG through :class:`sb3_gpg.zoo.GPGExperimentManager`), so that
normalization, wrappers, schedules and policy keyword strings are exactly what ``sb3-gpg train`` does:

- ``ppo``: SB3's PPO with the entry of the installed rl_zoo3's ``hyperparams/ppo.yml`` (read at run time, never
  copied here). The Zoo's MuJoCo entries are for ``HalfCheetah-v4`` and ``Hopper-v4``; they are applied to the
  ``-v5`` envs (same bodies and rewards, maintained versions).
- ``gpg``: GPG with its entry of the packaged ``hyperparams/gpg.yml`` (the ``default`` entry where a task has none).
- ``gpg-ppo-entry``: GPG with the Zoo's PPO entry minus the critic's keys (``gae_lambda``, ``vf_coef``,
  ``clip_range_vf``, the ``vf`` layers of ``net_arch``): what a new user tries first.

``--options key=value ...`` adds constructor options (or Zoo keys such as ``n_envs``) to the GPG runs
(``--options collection=episodes shared_starts=4``); each ``--options`` is its own variant and an empty one the entry
as it is, so remedies are ablated on the same tasks, seeds and budget.

Budget: the PPO entry's ``n_timesteps``, capped at 1M env steps, for every algorithm. Evaluation: the final policy,
deterministic, 20 episodes on a fresh env made like the Zoo's evaluation env (frozen ``VecNormalize`` statistics
where the entry normalizes, raw returns). Seeds: 5 per task whose runs take under about 2 minutes, 3 for the others.
Scores are per seed (the mean of its evaluation episodes); the report gives the IQM over seeds with its 95%
bootstrap CI (rliable), mean ± std, env steps and wall time per run, and learning curves.

Usage (from the repository root)::

    python -m benchmarks.zoo_suite plan --profile zoo
    python -m benchmarks.zoo_suite run --profile zoo --workers 2 --algos ppo gpg
    python -m benchmarks.zoo_suite run --profile zoo --tasks pendulum --options collection=episodes shared_starts=4
    python -m benchmarks.zoo_suite report --profile zoo
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cli import Suite, main
from benchmarks.harness import provenance, versions
from benchmarks.report import interval_estimate, machine, markdown_table
from benchmarks.sweep import Run

#: The budget cap of the issue: the Zoo entry's ``n_timesteps``, at most this many env steps.
BUDGET_CAP = 1_000_000
#: The critic's keys, dropped from the Zoo's PPO entry for ``gpg-ppo-entry``.
CRITIC_KEYS = ("gae_lambda", "vf_coef", "clip_range_vf")
ALGOS = ("ppo", "gpg", "gpg-ppo-entry")


@dataclass(frozen=True)
class ZooTask:
    """A task of the suite: the env and the name of its entry in the Zoo's ``ppo.yml``."""

    env_id: str
    zoo_entry: str
    #: Seeds of the published profile: 5 where a run takes under about 2 minutes, else 3.
    seeds: int

    @property
    def family(self) -> str:
        return self.env_id.split("-")[0]


TASKS: dict[str, ZooTask] = {
    "cartpole": ZooTask("CartPole-v1", "CartPole-v1", seeds=5),
    "acrobot": ZooTask("Acrobot-v1", "Acrobot-v1", seeds=3),
    "mountaincar": ZooTask("MountainCar-v0", "MountainCar-v0", seeds=3),
    "mountaincar_continuous": ZooTask("MountainCarContinuous-v0", "MountainCarContinuous-v0", seeds=5),
    "pendulum": ZooTask("Pendulum-v1", "Pendulum-v1", seeds=5),
    "lunarlander": ZooTask("LunarLander-v3", "LunarLander-v3", seeds=3),
    "lunarlander_continuous": ZooTask("LunarLanderContinuous-v3", "LunarLanderContinuous-v3", seeds=3),
    "halfcheetah": ZooTask("HalfCheetah-v5", "HalfCheetah-v4", seeds=3),
    "hopper": ZooTask("Hopper-v5", "Hopper-v4", seeds=3),
}


@dataclass(frozen=True)
class ZooProfile:
    name: str
    description: str
    eval_episodes: int
    #: None: each task's own number of seeds.
    seeds: tuple[int, ...] | None
    #: None: the Zoo entry's budget (capped); else this many env steps.
    budget: int | None
    publish: bool = True


PROFILES: dict[str, ZooProfile] = {
    "zoo": ZooProfile(
        "zoo",
        "the Zoo entry's n_timesteps capped at 1M; 5 seeds (3 for tasks whose runs take over ~2 minutes); 20 "
        "deterministic evaluation episodes",
        eval_episodes=20,
        seeds=None,
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
    """A ``--options`` value as YAML reads it (``4`` is an int, ``episodes`` a string, ``true`` a bool)."""
    import yaml

    return yaml.safe_load(text)


@dataclass(frozen=True)
class ZooRunSpec:
    """One run: an algorithm's entry on a task with a seed, GPG's extra options as sorted ``(name, value)`` pairs."""

    task: str
    algo: str
    seed: int
    profile: str
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS or self.algo not in ALGOS or self.profile not in PROFILES:
            raise ValueError(f"Unknown task, algo or profile in {self}: valid {list(TASKS)}, {ALGOS}, {list(PROFILES)}.")
        if self.options and self.algo == "ppo":
            raise ValueError(f"--options are GPG's constructor options; PPO runs take none ({dict(self.options)}).")
        object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))

    @property
    def variant(self) -> str:
        """``ppo``, ``gpg``, ``gpg-ppo-entry``, or e.g. ``gpg+collection=episodes,shared_starts=4``."""
        if not self.options:
            return self.algo
        return f"{self.algo}+" + ",".join(f"{name}={value}" for name, value in self.options)

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

    def file(self) -> str:
        return f"zoo_suite/{self.profile}/{self.task}/{self.variant}_s{self.seed}.json"


def _entry(spec: ZooRunSpec, task: ZooTask) -> tuple[dict[str, Any] | None, str]:
    """The entry a run trains with (None: the manager's own config file) and where it comes from."""
    if spec.algo == "gpg":
        return None, "hyperparams/gpg.yml (packaged)"
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
    from rl_zoo3.exp_manager import ExperimentManager

    from sb3_gpg import zoo

    zoo.register()
    task, profile = TASKS[spec.task], PROFILES[spec.profile]
    entry, _ = _entry(spec, task)
    config = None
    if entry is not None:
        import yaml

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


# --- Command line ---


def variants(args: argparse.Namespace) -> list[tuple[tuple[str, Any], ...]]:
    """The option sets of ``--options`` (each occurrence one variant; an empty one is the entry as it is)."""
    found = []
    for texts in args.options or [[]]:
        pairs = []
        for text in texts:
            name, separator, value = text.partition("=")
            if not separator:
                raise ValueError(f"--options takes key=value pairs, got {text!r}.")
            pairs.append((name, parse_value(value)))
        found.append(tuple(pairs))
    return found


def plan(args: argparse.Namespace) -> list[Run]:
    profile = PROFILES[args.profile]
    runs = []
    # Algorithm first, then tasks in the order given: a sweep does one algorithm's runs before the next's.
    for algo in args.algos:
        for options in variants(args) if algo != "ppo" else [()]:
            for name in args.tasks:
                seeds = args.seeds or profile.seeds or tuple(range(TASKS[name].seeds))
                for seed in seeds:
                    spec = ZooRunSpec(name, algo, seed, args.profile, options)
                    runs.append(Run(spec, spec.file()))
    return runs


def arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--algos", nargs="+", default=["ppo", "gpg"], choices=ALGOS, help="algorithms (default ppo gpg)")
    parser.add_argument("--options", nargs="*", action="append",
                        help="GPG constructor options key=value: a variant of the GPG runs; repeat for more variants, "
                        "an empty --options is the entry as it is (default: the entry only)")  # fmt: skip


def _score_rows(records: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.array([np.mean(record["eval"]["returns"]) for record in records])


def report(args: argparse.Namespace, runs: list[Run], records: dict[Run, dict[str, Any]]) -> str:
    """A table on the model of the RL Zoo's benchmark.md, the verdicts from the CIs, and learning curves."""
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = {}
    expected: dict[tuple[str, str], int] = {}
    for run in runs:
        key = (run.spec.task, run.spec.variant)
        expected[key] = expected.get(key, 0) + 1
        if run in records:
            by_cell.setdefault(key, []).append(records[run])
    variants = list(dict.fromkeys(run.spec.variant for run in runs))
    rows, verdicts = [], []
    for task_name in dict.fromkeys(run.spec.task for run in runs):
        task = TASKS[task_name]
        intervals = {}
        for variant in variants:
            done = by_cell.get((task_name, variant), [])
            if not done:
                rows.append([task.env_id, variant, f"pending (0/{expected.get((task_name, variant), 0)})", "", "", "", ""])
                continue
            scores = _score_rows(done)
            iqm, low, high = interval_estimate(scores)
            intervals[variant] = (iqm, low, high)
            pending_note = (
                "" if len(done) == expected[(task_name, variant)] else f" ({len(done)}/{expected[(task_name, variant)]})"
            )
            rows.append([
                task.env_id, variant, f"{iqm:.1f} [{low:.1f}, {high:.1f}]{pending_note}",
                f"{scores.mean():.1f} ± {scores.std():.1f}", f"{int(np.mean([r['env_steps'] for r in done])):,}",
                f"{np.mean([r['train_seconds'] for r in done]) / 60:.1f}", len(done),
            ])  # fmt: skip
        for variant in variants:
            if variant == "ppo" or variant not in intervals or "ppo" not in intervals:
                continue
            if min(len(by_cell[(task_name, variant)]), len(by_cell[(task_name, "ppo")])) < 3:
                verdicts.append((task.env_id, variant, "too few seeds for a verdict"))
                continue
            (_, low, high), (_, ppo_low, ppo_high) = intervals[variant], intervals["ppo"]
            verdict = "GPG ahead" if low > ppo_high else "PPO ahead" if high < ppo_low else "CIs overlap"
            verdicts.append((task.env_id, variant, verdict))
    header = ["env", "algo", "IQM [95% CI] over seeds", "mean ± std", "env steps", "train min/run", "seeds"]
    body = [
        f"Command: `{args.command_line}`. Machine(s): {machine()}; one torch thread per run.",
        "",
        markdown_table(header, rows),
    ]
    if verdicts:
        body += ["", markdown_table(["env", "GPG variant", "against PPO (95% CIs)"], verdicts)]
    plot = _plot_curves(args, by_cell, variants)
    if plot is not None:
        body += ["", f"Learning curves (training episodes, mean over seeds): [{plot.name}]({plot.name})"]
    return "\n".join(body) + "\n"


def _plot_curves(
    args: argparse.Namespace, by_cell: dict[tuple[str, str], list[dict[str, Any]]], variants: list[str]
) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(task for task, _ in by_cell))
    if not tasks:
        return None
    columns = min(3, len(tasks))
    rows = math.ceil(len(tasks) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    for axis, task_name in zip(axes.ravel(), tasks, strict=False):
        for variant in variants:
            records = by_cell.get((task_name, variant), [])
            if not records:
                continue
            grid = np.linspace(0, max(r["env_steps"] for r in records), 100)
            curves = []
            for record in records:
                steps = np.asarray(record["curve"]["timesteps"], dtype=float)
                values = np.array([np.nan if v is None else v for v in record["curve"]["ep_return"]], dtype=float)
                known = ~np.isnan(values)
                if known.sum() >= 2:
                    curves.append(np.interp(grid, steps[known], values[known], left=np.nan))
            if curves:
                mean = np.nanmean(np.array(curves), axis=0)
                axis.plot(grid, mean, label=variant)
        axis.set_title(TASKS[task_name].env_id, fontsize=9)
        axis.set_xlabel("env steps", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in axes.ravel()[len(tasks) :]:
        axis.set_visible(False)
    axes.ravel()[0].legend(fontsize=7)
    figure.tight_layout()
    args.folder.mkdir(parents=True, exist_ok=True)
    path = args.folder / "zoo_suite.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


SUITE = Suite(
    name="zoo_suite",
    doc=__doc__ or "",
    section="The RL Zoo's tasks: GPG against PPO's tuned entries",
    plan=plan,
    runner=run_zoo,
    report=report,
    tasks=tuple(TASKS),
    valid_tasks=tuple(TASKS),
    arguments=arguments,
    profiles=PROFILES,
)

if __name__ == "__main__":
    main(SUITE)
