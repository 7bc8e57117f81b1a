"""Group size at a fixed budget of env steps: which number of parallel envs gives the best final return?

GPG's group is its ``n_envs`` parallel trajectories. At a fixed budget ``B`` of env steps and a fixed rollout length
``n_steps``, a run with ``N`` envs gets ``B / (N * n_steps)`` iterations: a larger group gives a better baseline
(Prop. 2: the gradient error falls as ``1/sqrt(N)``) but fewer updates. This sweep measures the trade-off, GPG with
time binning and the learning benchmark's hyperparameters (``harness.TASKS``, ``--profile``), at every group size
of ``--envs`` and at one or more budgets per task.

The scaling law of arXiv 2603.01162 (GRPO's gradient is a
U-statistic) says that the optimal group size depends on the problem (its data and policy geometry) but not on the
budget or the number of iterations. Measuring two budgets on CartPole-v1 tests that: the law predicts the same best
group size at both (an empirical study of LLM RL, arXiv 2603.12151, found instead the best number of parallel
rollouts growing with the budget).

Usage (from the repository root)::

    python -m benchmarks.groupsize plan --profile reduced              # the runs and their duration
    python -m benchmarks.groupsize run --profile reduced --workers 1   # resumable: one JSON per finished run
    python -m benchmarks.groupsize report --profile reduced            # table, plot, RESULTS.md section

Results: ``benchmarks/results/groupsize/<profile>/<task>/b<budget>_n<envs>_s<seed>.json`` (``harness.run_one``'s
record, whose spec holds the iterations, plus ``budget``), the table ``groupsize.md`` and the plot
``groupsize.png`` beside them.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from benchmarks import cli
from benchmarks.harness import PROFILES, TASKS, RunSpec, estimate_minutes, run_one
from benchmarks.report import CellScores, filled_curve, interval_estimate, machines, markdown_table
from benchmarks.sweep import Run

GROUP_SIZES = (2, 4, 8, 16, 32, 64)
# Env-step budgets per task: multiples of 64 envs x n_steps (reduced profile: 128 for CartPole, 256 for
# LunarLander), so that every group size gets a whole number of iterations. CartPole: ~100k and ~400k steps (12-48
# iterations at 64 envs, 384-1536 at 2); LunarLander: ~1M (60 at 64 envs, 1920 at 2).
BUDGETS = {"cartpole": (98_304, 393_216), "lunarlander": (983_040,)}
# Seeds per task unless --seeds: CartPole runs are cheap (about 5 CPU minutes per seed for both budgets), so they
# get a third seed; LunarLander (about 25 minutes per seed) gets the reduced profile's two.
SEEDS = {"cartpole": (0, 1, 2), "lunarlander": (0, 1)}


def budget_run(task: str, n_envs: int, seed: int, profile: str, budget: int) -> Run:
    """A GPG run with time binning for ``budget // (n_envs * n_steps)`` iterations."""
    per_iteration = n_envs * PROFILES[profile].n_steps[task]
    if budget % per_iteration:
        raise ValueError(
            f"Budget {budget} is not a whole number of iterations of {n_envs} envs x {per_iteration // n_envs} steps "
            f"({per_iteration} env steps); valid budgets are multiples of {per_iteration}."
        )
    spec = RunSpec(task, "gpg", n_envs, seed, profile, iterations=budget // per_iteration)
    return Run(spec, f"groupsize/{profile}/{task}/b{budget}_n{n_envs}_s{seed}.json")


def budget_of(spec: RunSpec) -> int:
    return spec.training_iterations * spec.n_envs * spec.n_steps


def plan(args: argparse.Namespace) -> list[Run]:
    """Seed by seed, then task, budget and group size: an interrupted sweep holds whole curves of one seed."""
    budgets = {task: args.budgets or BUDGETS.get(task, ()) for task in args.tasks}
    for task, values in budgets.items():
        if not values:
            raise ValueError(f"No default budget for task {task!r} (defaults: {', '.join(BUDGETS)}); pass --budgets.")
    seeds = {task: args.seeds or SEEDS.get(task, PROFILES[args.profile].seeds) for task in args.tasks}
    return [
        budget_run(task, n_envs, seed, args.profile, value)
        for seed in sorted(set().union(*seeds.values()))
        for task in args.tasks
        if seed in seeds[task]
        for value in budgets[task]
        for n_envs in args.envs
    ]


def run_budget(spec: RunSpec, progress_position: int = 0) -> dict[str, Any]:
    """Train and evaluate one run with the harness; its record names the budget too."""
    return {**run_one(spec, progress_position), "budget": budget_of(spec)}


def best_sizes(cells: dict[int, CellScores]) -> tuple[list[int], list[int]]:
    """The group sizes with the highest mean final return (several when they tie, e.g. at CartPole's 500), and the
    other sizes whose IQM CI overlaps the first best's."""
    done = {n: cell for n, cell in cells.items() if cell.runs}
    if not done:
        return [], []
    top = max(np.mean(cell.scores) for cell in done.values())
    best = [n for n, cell in done.items() if np.mean(cell.scores) == top]
    _, best_low, best_high = interval_estimate(np.asarray(done[best[0]].scores))
    ties = []
    for n, cell in done.items():
        _, low, high = interval_estimate(np.asarray(cell.scores))
        if n not in best and high >= best_low and low <= best_high:
            ties.append(n)
    return best, sorted(ties)


def report(args: argparse.Namespace, runs: list[Run], records: dict[Run, dict]) -> str:
    """Per task and budget, against group size: the final evaluation return, and the mean training return over the
    run (how fast it learned within the budget, which still ranks sizes that all reach a task's maximum); a table,
    a plot, a RESULTS.md section."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profile, sizes, out = args.profile, args.envs, args.folder
    settings = PROFILES[profile]
    tasks = list(dict.fromkeys(run.spec.task for run in runs))
    seeds = {task: sorted({run.spec.seed for run in runs if run.spec.task == task}) for task in tasks}
    budgets = {task: list(dict.fromkeys(budget_of(run.spec) for run in runs if run.spec.task == task)) for task in tasks}
    cells = {(run.spec.task, budget_of(run.spec), run.spec.n_envs): CellScores(len(seeds[run.spec.task])) for run in runs}
    final: dict[tuple[str, int, int], list[float]] = {}  # per seed: mean final evaluation return
    training: dict[tuple[str, int, int], list[float]] = {}  # per seed: mean training return over the run
    for run, record in records.items():
        key = (run.spec.task, budget_of(run.spec), run.spec.n_envs)
        cells[key].add(record)
        final.setdefault(key, []).append(float(np.mean(record["eval"]["returns"])))
        with np.errstate(all="ignore"):
            training.setdefault(key, []).append(float(np.nanmean(filled_curve(record)[1])))

    fig, axes = plt.subplots(2, len(tasks), figsize=(5.5 * len(tasks), 7.5), squeeze=False)
    sections, findings = [], []
    for col, task in enumerate(tasks):
        env_id = TASKS[task].env_id
        n_steps = settings.n_steps[task]
        header = ["envs (group size)", *(f"budget {b:,} steps" for b in budgets[task])]
        rows = []
        for n in sizes:
            texts = []
            for budget in budgets[task]:
                mean_training = np.mean(training[task, budget, n]) if training.get((task, budget, n)) else None
                during = "" if mean_training is None else f"; training mean {mean_training:.0f}"
                texts.append(f"{cells[task, budget, n].text()}{during}; {budget // (n * n_steps)} iterations")
            rows.append([n, *texts])
        sections.append(f"**{env_id}** ({n_steps} steps per env per rollout)\n\n{markdown_table(header, rows)}")
        for i, budget in enumerate(budgets[task]):
            xs = [n for n in sizes if final.get((task, budget, n))]
            if not xs:
                continue
            color = plt.get_cmap("tab10")(i)
            for row, values in enumerate((final, training)):
                ax = axes[row][col]
                ax.plot(xs, [np.mean(values[task, budget, n]) for n in xs], "-o", color=color,
                        label=f"{budget:,} env steps")  # fmt: skip
                for n in xs:
                    ax.scatter([n] * len(values[task, budget, n]), values[task, budget, n], color=color, alpha=0.35,
                               s=12)  # fmt: skip
            best, ties = best_sizes({n: cells[task, budget, n] for n in xs})
            fastest = max(xs, key=lambda n: np.mean(training[task, budget, n]))
            tied = f"; IQM CI overlapping: {', '.join(map(str, ties))}" if ties else "; no other size's CI overlaps"
            findings.append(
                f"- {env_id}, {budget:,} env steps: highest final return at {' / '.join(map(str, best))} envs"
                f"{tied}; highest training mean at **{fastest}** envs."
            )
        for row, label in enumerate(("final evaluation return", "mean training return over the run")):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(sizes), [str(n) for n in sizes])
            ax.set_xlabel("parallel envs (group size)")
            ax.set_ylabel(f"{label}\n(mean over seeds; dots: seeds)", fontsize=9)
            ax.set_title(env_id, fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"GPG at a fixed env-step budget: return against group size ({profile} profile)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "groupsize.png", dpi=100)
    plt.close(fig)

    done = sum(cell.runs for cell in cells.values())
    rollouts = ", ".join(f"{TASKS[t].env_id} {settings.n_steps[t]} steps per env per rollout" for t in tasks)
    return f"""Command: `{args.command_line}` (runs: `python -m benchmarks.groupsize run --profile {profile}`).
Machine: {machines(records.values())}, one torch thread per run.
GPG, time binning, window collection, the learning benchmark's hyperparameters (`{profile}` profile: {rollouts});
the learning rate schedule spans each run. At budget `B`, `N` envs get `B / (N * n_steps)` iterations.
Seeds: {"; ".join(f"{TASKS[t].env_id} {', '.join(map(str, seeds[t]))}" for t in tasks)}; {done} of {
        sum(cell.expected for cell in cells.values())
    } runs finished.

Two predictions to compare: the U-statistic scaling law of GRPO (arXiv 2603.01162) says the best
group size depends on the problem, not on the budget, so it should be the same at every budget of a task; the
IsoCompute study of LLM RL (arXiv 2603.12151) found the best number of parallel rollouts growing with the budget.

Cells: final deterministic evaluation return, mean ± std (IQM [95% bootstrap CI]) over the finished seeds x
{settings.eval_episodes} episodes; the training mean (the training episodes' return averaged over the run's
iterations, i.e. over its env steps: how fast it learned within the budget); the run's iterations.

{chr(10).join(sections)}
![group size](results/groupsize/{profile}/groupsize.png)

{chr(10).join(findings)}
"""


def arguments(command: argparse.ArgumentParser, name: str) -> None:
    defaults = "; ".join(f"{task} {' '.join(map(str, values))}" for task, values in BUDGETS.items())
    command.add_argument("--budgets", type=int, nargs="+",
                         help=f"env-step budgets for every task (default per task: {defaults})")  # fmt: skip


SUITE = cli.Suite(name="groupsize", doc=__doc__, section="Group size at a fixed budget", plan=plan, runner=run_budget,
                  report=report, tasks=tuple(BUDGETS), sizes=GROUP_SIZES, arguments=arguments,
                  estimate=estimate_minutes)  # fmt: skip

if __name__ == "__main__":
    cli.main(SUITE)
