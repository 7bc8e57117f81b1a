"""GRPO's groups in GPG: ``shared_starts=K`` envs per initial state against independent starts.

Sharing starts removes the start state's variance from each step's baseline (a step is compared with siblings that
started where it did), but leaves fewer distinct starts, and fewer samples, per bin. This suite measures which effect
wins, task by task: GPG at a fixed ``n_envs`` and the suite's env-step budget (the Zoo PPO entry's, capped at 1M),
with complete episodes, ``K`` in {1, 2, 4, 8} (1: independent starts), time bins (process supervision), and PPO's
score for reference. The runs are ``benchmarks.zoo_suite`` runs (same records, same files), so the two suites share
them.

Each task's GPG base (the entry the ``K`` variants change):

- ``pendulum``: the Zoo's PPO entry minus the critic (gSDE, gamma 0.9), ``collection=episodes``, ``n_envs=8``;
- ``cartpole``: our ``gpg.yml`` entry (8 envs, complete episodes);
- ``lunarlander``: our ``gpg.yml`` entry (16 envs), ``collection=episodes``.

Usage (from the repository root)::

    python -m benchmarks.shared_starts plan --profile zoo
    python -m benchmarks.shared_starts run --profile zoo --workers 2
    python -m benchmarks.shared_starts report --profile zoo
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.cli import Suite, main
from benchmarks.report import interval_estimate, machines, markdown_table
from benchmarks.sweep import Run
from benchmarks.zoo_runs import PROFILES, TASKS, ZooRunSpec, run_zoo, score

#: Block sizes: 1 is independent starts.
SHARED_STARTS = (1, 2, 4, 8)


@dataclass(frozen=True)
class Base:
    """A task's GPG configuration, which the ``K`` variants change by ``shared_starts`` only."""

    algo: str
    options: tuple[tuple[str, Any], ...]

    def spec(self, task: str, shared_starts: int, seed: int, profile: str) -> ZooRunSpec:
        options = self.options + ((("shared_starts", shared_starts),) if shared_starts > 1 else ())
        return ZooRunSpec(task, self.algo, seed, profile, options)


BASES: dict[str, Base] = {
    "pendulum": Base("gpg-ppo-entry", (("collection", "episodes"), ("n_envs", 8))),
    "cartpole": Base("gpg", ()),
    "lunarlander": Base("gpg", (("collection", "episodes"),)),
}


def plan(args: argparse.Namespace) -> list[Run]:
    profile = PROFILES[args.profile]
    runs = []
    for task in args.tasks:
        seeds = args.seeds or profile.seeds
        specs = [BASES[task].spec(task, k, seed, args.profile) for k in args.shared_starts for seed in seeds]
        specs += [ZooRunSpec(task, "ppo", seed, args.profile) for seed in seeds] if args.with_ppo else []
        runs += [Run(spec, spec.file()) for spec in specs]
    return runs


def arguments(parser: argparse.ArgumentParser, command: str) -> None:
    default = " ".join(map(str, SHARED_STARTS))
    parser.add_argument("--shared-starts", type=int, nargs="+", default=list(SHARED_STARTS),
                        help=f"block sizes K (default {default}; 1: independent starts)")  # fmt: skip
    parser.add_argument("--with-ppo", action=argparse.BooleanOptionalAction, default=True,
                        help="PPO's runs of the tasks too, as a reference (default on)")  # fmt: skip


def report(args: argparse.Namespace, runs: list[Run], records: dict[Run, dict[str, Any]]) -> str:
    """Per task: IQM [95% CI] over seeds for each K and PPO, and whether each K differs from independent starts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, points = [], {}
    for task in args.tasks:
        cells: dict[str, list[float]] = {}
        for run in runs:
            if run.spec.task == task and run in records:
                k = "PPO" if run.spec.algo == "ppo" else dict(run.spec.options).get("shared_starts", 1)
                cells.setdefault(str(k), []).append(score(records[run]))
        intervals = {k: interval_estimate(np.array(scores)) for k, scores in cells.items() if len(scores) >= 2}
        independent = intervals.get("1")
        for k in [*map(str, args.shared_starts), "PPO"]:
            if k not in cells:
                rows.append([TASKS[task].env_id, k, "pending", "", ""])
                continue
            scores = np.array(cells[k])
            iqm, low, high = intervals.get(k, (scores.mean(), np.nan, np.nan))
            verdict = ""
            if k not in ("1", "PPO") and independent is not None and k in intervals and min(len(scores), len(cells["1"])) >= 3:
                verdict = "better" if low > independent[2] else "worse" if high < independent[1] else "CIs overlap"
            rows.append([TASKS[task].env_id, k, f"{iqm:.1f} [{low:.1f}, {high:.1f}] ({len(scores)} seeds)",
                         f"{scores.mean():.1f} ± {scores.std():.1f}", verdict])  # fmt: skip
        points[task] = {k: v for k, v in intervals.items()}
    figure, axes = plt.subplots(1, len(args.tasks), figsize=(4.2 * len(args.tasks), 3.2), squeeze=False)
    for axis, task in zip(axes[0], args.tasks, strict=True):
        ks = [k for k in map(str, args.shared_starts) if k in points[task]]
        if ks:
            iqm = np.array([points[task][k] for k in ks])
            axis.errorbar(range(len(ks)), iqm[:, 0], yerr=[iqm[:, 0] - iqm[:, 1], iqm[:, 2] - iqm[:, 0]], fmt="o-",
                          capsize=3, label="GPG, K envs per start")  # fmt: skip
            axis.set_xticks(range(len(ks)), [f"K={k}" for k in ks])
        if "PPO" in points[task]:
            axis.axhspan(points[task]["PPO"][1], points[task]["PPO"][2], color="grey", alpha=0.25, label="PPO (95% CI)")
        axis.set_title(TASKS[task].env_id, fontsize=9)
        axis.set_ylabel("final return, IQM over seeds", fontsize=8)
        axis.legend(fontsize=7)
    figure.tight_layout()
    args.folder.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.folder / "shared_starts.png", dpi=110)
    plt.close(figure)
    header = ["env", "K (envs per start)", "IQM [95% CI] over seeds", "mean ± std", "against K=1 (95% CIs)"]
    return (
        f"Command: `{args.command_line}`. Machine(s): {machines(records.values())}; one torch thread per run. GPG bases: "
        + "; ".join(f"{task}: {BASES[task].algo} {dict(BASES[task].options) or ''}".rstrip() for task in args.tasks)
        + ".\n\n"
        + markdown_table(header, rows)
        + "\nPlot: [shared_starts.png](shared_starts.png)\n"
    )


SUITE = Suite(
    name="shared_starts",
    doc=__doc__ or "",
    section="GRPO's groups: shared starts against independent starts",
    plan=plan,
    runner=run_zoo,
    report=report,
    tasks=tuple(BASES),
    valid_tasks=tuple(BASES),
    arguments=arguments,
    profiles=PROFILES,
    after="The RL Zoo's tasks: GPG against PPO's tuned entries",
)

if __name__ == "__main__":
    main(SUITE)
