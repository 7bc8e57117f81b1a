"""Binning ablation of GPG on LunarLander-v3 (paper Figure 4), plus window versus complete-episode collection.

Configurations, each at a small, a medium and a large group size (4, 16 and 32 envs), with the learning
benchmark's LunarLander hyperparameters and profile (``benchmarks.harness``):

- ``time`` (``f = t``, the default; these cells are the learning benchmark's GPG runs, shared, not repeated),
- ``none`` (universal binning, one bin: GRPO / REINFORCE++),
- ``space`` with ε = 1.0, 0.5, 0.2 (``round(s / ε)`` per dimension),
- ``space_time`` with ε = 1.0, 0.5, 0.2,
- ``time`` with ``collection="episodes"`` (whole episodes from a reset, no truncated return).

Usage (from the repository root)::

    python -m benchmarks.ablation plan --profile reduced     # the runs and their duration
    python -m benchmarks.ablation run --profile reduced --workers 1
    python -m benchmarks.ablation report --profile reduced
    # Figure 4's claim at its own scale (128 envs, the paper profile), a column of the reduced report:
    python -m benchmarks.ablation run --profile paper --envs 128 --configs time "space-time ε=0.5" "space-time ε=0.2"

Result files: ``benchmarks/results/ablation/<profile>/lunarlander/<config>_n<envs>_s<seed>.json`` (the ``time``
cells: the learning benchmark's files). It can run beside ``benchmarks.learning run``: a run that both sweeps
share is done once (each run is locked while it trains).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from benchmarks import cli
from benchmarks.harness import PROFILES, RunSpec, check_choice, estimate_minutes, run_one
from benchmarks.report import CellScores, filled_curve, interval_estimate, machines, markdown_table
from benchmarks.sweep import Run, load_results

TASK = "lunarlander"
GROUP_SIZES = (4, 16, 32)
# (label, binning, bin_size, collection)
CONFIGS: tuple[tuple[str, str, float, str], ...] = (
    ("time", "time", 1.0, "window"),
    ("universal", "none", 1.0, "window"),
    ("space ε=1.0", "space", 1.0, "window"),
    ("space ε=0.5", "space", 0.5, "window"),
    ("space ε=0.2", "space", 0.2, "window"),
    ("space-time ε=1.0", "space_time", 1.0, "window"),
    ("space-time ε=0.5", "space_time", 0.5, "window"),
    ("space-time ε=0.2", "space_time", 0.2, "window"),
    ("time, episodes", "time", 1.0, "episodes"),
)
CONFIG_LABELS = tuple(label for label, *_ in CONFIGS)
#: The paper's claim at its own scale (Figure 4: fine bins pay off only with large groups), run with ``--profile
#: paper --envs 128 --configs`` these; a published profile's report adds them as a column.
PAPER_CONFIGS = ("time", "space-time ε=0.5", "space-time ε=0.2")
PAPER_ENVS = 128


def plan(args: argparse.Namespace) -> list[Run]:
    """The ablation's runs, seed by seed, then group size, then configuration (so a partial sweep is paired)."""
    for label in args.configs:
        check_choice("configuration", label, CONFIG_LABELS)
    specs = [
        RunSpec(task, "gpg", n_envs, seed, args.profile, binning=binning, bin_size=bin_size, collection=collection)
        for seed in args.seeds or PROFILES[args.profile].seeds
        for n_envs in args.envs
        for task in args.tasks
        for label, binning, bin_size, collection in CONFIGS
        if label in args.configs
    ]
    return [Run(spec, spec.result_file) for spec in specs]


def config_label(spec: RunSpec) -> str:
    for label, binning, bin_size, collection in CONFIGS:
        same_size = binning not in ("space", "space_time") or bin_size == spec.bin_size
        if (binning, collection) == (spec.binning, spec.collection) and same_size:
            return label
    return spec.variant


def report(args: argparse.Namespace, runs: list[Run], records: dict[Run, dict]) -> str:
    """Table (final deterministic evaluation) and plots (bars with CIs, learning curves) of the ablation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profile, out = args.profile, args.folder
    labels = [label for label in CONFIG_LABELS if label in args.configs]
    settings = PROFILES[profile]
    expected = len(args.seeds or settings.seeds)
    # Columns: (title, records, seeds expected, configurations planned); a published profile adds the paper
    # protocol's 128-env runs of the configurations of PAPER_CONFIGS as the last column.
    columns = [(f"{n} envs", {run: r for run, r in records.items() if run.spec.n_envs == n}, expected, labels)
               for n in args.envs]  # fmt: skip
    paper_labels = [label for label in labels if label in PAPER_CONFIGS]
    if settings.publish and profile != "paper" and paper_labels:
        paper = argparse.Namespace(profile="paper", configs=paper_labels, seeds=None, envs=[PAPER_ENVS], tasks=[TASK])
        columns.append((f"{PAPER_ENVS} envs, paper protocol", load_results(plan(paper), args.out),
                        len(PROFILES["paper"].seeds), paper_labels))  # fmt: skip
    titles = [title for title, *_ in columns]
    cells = {(label, title): CellScores(count) for title, _, count, planned in columns for label in planned}
    curves: dict[tuple[str, str], list[np.ndarray]] = {}
    env_steps: dict[tuple[str, str], list[int]] = {}
    for title, column, *_ in columns:
        for run, record in column.items():
            key = (config_label(run.spec), title)
            cells[key].add(record)
            curves.setdefault(key, []).append(filled_curve(record)[1])
            env_steps.setdefault(key, []).append(record["env_steps"])

    rows = [[label, *(cells[label, title].text() if (label, title) in cells else "-" for title in titles)]
            for label in labels]  # fmt: skip
    table = markdown_table(["binning", *titles], rows)

    fig = plt.figure(figsize=(15, 8.5))
    grid = fig.add_gridspec(2, len(titles), height_ratios=[1.1, 1])
    bars = fig.add_subplot(grid[0, :])
    width = 0.8 / len(labels)
    colors = plt.get_cmap("tab10")
    for i, label in enumerate(labels):
        for j, title in enumerate(titles):
            cell = cells.get((label, title))
            if cell is None or not cell.runs:
                continue
            iqm, low, high = interval_estimate(np.asarray(cell.scores))
            bars.bar(j + (i - len(labels) / 2 + 0.5) * width, iqm, width, color=colors(i),
                     yerr=[[iqm - low], [high - iqm]], capsize=2, label=label if j == 0 else None)  # fmt: skip
    bars.set_xticks(range(len(titles)), titles)
    bars.set_ylabel("final eval return\n(IQM, 95% bootstrap CI)")
    bars.set_xlim(-0.5, len(titles) - 0.5)
    fig.suptitle(f"GPG on LunarLander-v3: binning and collection ({profile} profile)")
    bars.axhline(0, color="black", lw=0.5)
    bars.grid(axis="y", alpha=0.3)
    bars.legend(fontsize=8, ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    for j, title in enumerate(titles):
        ax = fig.add_subplot(grid[1, j], sharey=None)
        for i, label in enumerate(labels):
            runs = curves.get((label, title))
            if runs:
                length = min(len(run) for run in runs)
                with warnings.catch_warnings():  # all-NaN columns: no episode has ended yet in any seed
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(np.vstack([run[:length] for run in runs]), axis=0)
                ax.plot(np.arange(1, length + 1), mean, color=colors(i), lw=1.1, label=label)
        ax.set_title(title, fontsize=9)
        if j == 0:
            ax.set_ylabel("training episode return\n(mean over seeds)")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plot = out / "ablation.png"
    fig.savefig(plot, dpi=110)
    plt.close(fig)

    own, extra = columns[: len(args.envs)], columns[len(args.envs) :]
    runs_done = sum(cells[label, title].runs for title, *_ in own for label in labels)
    # Complete-episode rollouts run every env to the end of its episode: the same 200 iterations cost more steps.
    episodes, window = CONFIG_LABELS[-1], CONFIG_LABELS[0]
    steps = "; ".join(
        f"{title} {np.mean(env_steps[episodes, title]):,.0f} vs {np.mean(env_steps[window, title]):,.0f} "
        f"({np.mean(env_steps[episodes, title]) / np.mean(env_steps[window, title]):.1f}x)"
        for title in titles
        if env_steps.get((episodes, title)) and env_steps.get((window, title))
    )
    planned_runs = len(labels) * len(args.envs) * expected
    paper_text = ""
    for title, _, count, planned in extra:
        paper_done = sum(cells[label, title].runs for label in planned)
        paper_text = (
            f" Last column: the paper profile ({PROFILES['paper'].description}), {PAPER_ENVS} envs, configurations "
            f"{', '.join(planned)} only (`python -m benchmarks.ablation run --profile paper --envs {PAPER_ENVS} "
            f"--configs ...`): {paper_done} of {len(planned) * count} runs finished."
        )
    return f"""Command: `{args.command_line}` (runs: `python -m benchmarks.ablation run --profile {profile}`).
Machine: {machines(records.values())}, one torch thread per run.
Profile `{profile}`: {settings.description}. {runs_done} of {planned_runs} runs finished.{paper_text}

GPG on LunarLander-v3 with the learning benchmark's hyperparameters; only the binning (and in the last row the
collection mode) changes. The `time` row is the learning benchmark's GPG runs. Cells: final deterministic
evaluation return, mean ± std (IQM [95% bootstrap CI]) over {expected} seeds x {settings.eval_episodes} episodes.

{table}
Env steps per run, `{episodes}` vs `{window}` (mean over seeds): {steps or "no pair finished"}.

![ablation](results/ablation/{profile}/ablation.png)
"""


def arguments(command: argparse.ArgumentParser, name: str) -> None:
    command.add_argument("--configs", nargs="+", default=list(CONFIG_LABELS),
                         help=f"configurations (default all: {', '.join(CONFIG_LABELS)})")  # fmt: skip


# The report is LunarLander's (paper Figure 4): no other task.
SUITE = cli.Suite(name="ablation", doc=__doc__, section="Binning ablation", plan=plan, runner=run_one, report=report,
                  tasks=(TASK,), valid_tasks=(TASK,), sizes=GROUP_SIZES, after="Learning benchmark", arguments=arguments,
                  estimate=estimate_minutes)  # fmt: skip

if __name__ == "__main__":
    cli.main(SUITE)
