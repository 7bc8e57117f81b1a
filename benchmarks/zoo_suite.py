"""The RL Zoo's task suite: SB3's PPO with the Zoo's own tuned entry against GPG with ours, at equal env steps.

A user who switches from PPO keeps the RL Zoo: the same command line, the same YAML entries. Each run here goes
through the Zoo's own ``ExperimentManager`` (GPG through :class:`sb3_gpg.zoo.GPGExperimentManager`), so that
normalization, wrappers, schedules and policy keyword strings are exactly what ``sb3-gpg train`` does:

- ``ppo``: SB3's PPO with the entry of the installed rl_zoo3's ``hyperparams/ppo.yml`` (read at run time, never
  copied here). The Zoo's MuJoCo entries are for ``HalfCheetah-v4`` and ``Hopper-v4``; they are applied to the
  ``-v5`` envs (same bodies and rewards, maintained versions).
- ``gpg``: GPG with its entry of ``hyperparams/gpg.yml`` (the ``default`` entry where a task has none), read from the
  checkout the suite runs from, so that a sweep in a worktree keeps its commit's entries while ``main`` moves on.
- ``gpg-ppo-entry``: GPG with the Zoo's PPO entry minus the critic's keys (``gae_lambda``, ``vf_coef``,
  ``clip_range_vf``, the ``vf`` layers of ``net_arch``): what a new user tries first.
- ``gpg-default``: GPG with the ``default`` entry of ``gpg.yml`` on every task, entry or not: what a task without an
  entry gets (with ``--options``, candidates for that entry).

``--options key=value ...`` adds constructor options (or Zoo keys such as ``n_envs``) to the GPG runs
(``--options collection=episodes shared_starts=4``); each ``--options`` is its own variant and an empty one the entry
as it is, so remedies are ablated on the same tasks, seeds and budget. Values are read as YAML, mappings included:
``--options 'vec_env_wrapper={sb3_gpg.exploration.VecCountBonus: {beta: 0.3, cells: 32}}'``. ``--ppo-options`` does
the same for the PPO runs, with Zoo keys only: whether a remedy that is not GPG's helps PPO as well. The verdicts are
always against PPO's entry as it is.

Budget: the PPO entry's ``n_timesteps``, capped at 1M env steps, for every algorithm. Evaluation: the final policy,
deterministic, 20 episodes on a fresh env made like the Zoo's evaluation env (frozen ``VecNormalize`` statistics
where the entry normalizes, raw returns). Seeds: 5 per task and algorithm (with 3, the bootstrap CI of the IQM is
the seeds' whole range). Scores are per seed (the mean of its evaluation episodes); the report gives the IQM over
seeds with its 95% bootstrap CI (rliable), mean ± std, env steps and wall time per run, and learning curves.

Usage (from the repository root)::

    python -m benchmarks.zoo_suite plan --profile zoo
    python -m benchmarks.zoo_suite run --profile zoo --workers 2 --algos ppo gpg
    python -m benchmarks.zoo_suite run --profile zoo --tasks pendulum --options collection=episodes shared_starts=4
    python -m benchmarks.zoo_suite report --profile zoo
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cli import Suite, main
from benchmarks.report import interval_estimate, machines, markdown_table
from benchmarks.sweep import Run
from benchmarks.zoo_runs import ALGOS, PROFILES, TASKS, ZooRunSpec, parse_variants, run_zoo, score


def plan(args: argparse.Namespace) -> list[Run]:
    profile = PROFILES[args.profile]
    runs = []
    # Algorithm first, then tasks in the order given: a sweep does one algorithm's runs before the next's.
    for algo in args.algos:
        for options in parse_variants(args.ppo_options if algo == "ppo" else args.options):
            for name in args.tasks:
                for seed in args.seeds or profile.seeds:
                    spec = ZooRunSpec(name, algo, seed, args.profile, options)
                    runs.append(Run(spec, spec.file()))
    return runs


def arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--algos", nargs="+", default=["ppo", "gpg"], choices=ALGOS, help="algorithms (default ppo gpg)")
    parser.add_argument("--options", nargs="*", action="append",
                        help="GPG constructor options or Zoo keys, key=value (values as YAML): a variant of the GPG runs; "
                        "repeat for more variants, "
                        "an empty --options is the entry as it is (default: the entry only)")  # fmt: skip
    parser.add_argument("--ppo-options", nargs="*", action="append",
                        help="the same for the PPO runs, Zoo keys only (a remedy that is not GPG's, such as "
                        "vec_env_wrapper, tried on PPO too); verdicts are against PPO's entry as it is")  # fmt: skip


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
                if "+" not in variant:  # an ablation variant not run on this task is left out; an entry is pending
                    rows.append([task.env_id, variant, f"pending (0/{expected.get((task_name, variant), 0)})", "", "", "", ""])
                continue
            scores = np.array([score(record) for record in done])
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
            if variant.partition("+")[0] == "ppo" or variant not in intervals or "ppo" not in intervals:
                continue
            if min(len(by_cell[(task_name, variant)]), len(by_cell[(task_name, "ppo")])) < 3:
                verdicts.append((task.env_id, variant, "too few seeds for a verdict"))
                continue
            (_, low, high), (_, ppo_low, ppo_high) = intervals[variant], intervals["ppo"]
            verdict = "GPG ahead" if low > ppo_high else "PPO ahead" if high < ppo_low else "CIs overlap"
            verdicts.append((task.env_id, variant, verdict))
    header = ["env", "algo", "IQM [95% CI] over seeds", "mean ± std", "env steps", "train min/run", "seeds"]
    body = [
        f"Command: `{args.command_line}`. Machine(s): {machines(records.values())}; one torch thread per run.",
        "",
        markdown_table(header, rows),
    ]
    if verdicts:
        body += ["", markdown_table(["env", "GPG variant", "against PPO (95% CIs)"], verdicts)]
    # The entries only: a dozen ablation variants per task make the shared legend unreadable (their scores are in
    # the table).
    plot = _plot_curves(args, by_cell, [variant for variant in variants if "+" not in variant])
    if plot is not None:
        body += [
            "",
            f"Learning curves (training episodes, mean over seeds; the entries, not the `+` variants): "
            f"[{plot.name}]({plot.name})",
        ]
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
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # grid points before a run's first episode
                    mean = np.nanmean(np.array(curves), axis=0)
                axis.plot(grid, mean, label=variant, color=f"C{variants.index(variant) % 10}")  # one colour per variant
        axis.set_title(TASKS[task_name].env_id, fontsize=9)
        axis.set_xlabel("env steps", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in axes.ravel()[len(tasks) :]:
        axis.set_visible(False)
    labels: dict[str, Any] = {}
    for axis in axes.ravel():
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            labels.setdefault(label, handle)
    if labels:  # none where no run has two training episodes yet
        figure.legend(labels.values(), labels.keys(), loc="lower center", ncol=min(len(labels), 3), fontsize=7)
    figure.tight_layout(rect=(0, 0.06 + 0.02 * (len(labels) // 3), 1, 1))
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
