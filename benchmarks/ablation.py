"""Binning ablation of GPG on LunarLander-v3 (paper Figure 4), plus window versus complete-episode collection.

Configurations, each at a small, a medium and a large group size (4, 16 and 32 envs), with the learning
benchmark's LunarLander hyperparameters and profile (``learning.py``, ``common.py``):

- ``time`` (``f = t``, the default; these cells are the learning benchmark's GPG runs, shared, not repeated),
- ``none`` (universal binning, one bin: GRPO / REINFORCE++),
- ``space`` with ε = 1.0, 0.5, 0.2 (``round(s / ε)`` per dimension),
- ``space_time`` with ε = 1.0, 0.5, 0.2,
- ``time`` with ``collection="episodes"`` (whole episodes from a reset, no truncated return).

Usage (from the repository root)::

    python benchmarks/ablation.py run --profile reduced --workers 1
    python benchmarks/ablation.py report --profile reduced

``learning.py run --with-ablation`` interleaves these runs with the learning sweep (after each env count).
Result files: ``benchmarks/results/ablation/<profile>/lunarlander/<config>_n<envs>_s<seed>.json``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PROFILES,
    RESULTS,
    CellScores,
    RunSpec,
    check_choice,
    command_line,
    filled_curve,
    interval_estimate,
    load_results,
    machine,
    markdown_table,
    replace_section,
    run_sweep,
    with_notes,
)

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
INTRO = "# Benchmark results\n\nResults of the benchmark scripts in `benchmarks/`, one section per benchmark.\n"


def ablation_specs(profile: str, seeds: Sequence[int], sizes: Sequence[int], labels: Sequence[str] = CONFIG_LABELS,
                   ) -> list[RunSpec]:  # fmt: skip
    """The ablation's runs, seed by seed, then group size, then configuration (so a partial sweep is paired)."""
    chosen = [config for config in CONFIGS if config[0] in labels]
    return [
        RunSpec(TASK, "gpg", n_envs, seed, profile, binning=binning, bin_size=bin_size, collection=collection)
        for seed in seeds
        for n_envs in sizes
        for _, binning, bin_size, collection in chosen
    ]


def config_label(spec: RunSpec) -> str:
    for label, binning, bin_size, collection in CONFIGS:
        same_size = binning not in ("space", "space_time") or bin_size == spec.bin_size
        if (binning, collection) == (spec.binning, spec.collection) and same_size:
            return label
    return spec.variant


def report(profile: str, root: Path, results_md: Path) -> None:
    """Table (final deterministic evaluation) and plots (bars with CIs, learning curves) of the ablation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = PROFILES[profile]
    results = {spec: record for spec, record in load_results(root).items() if spec.profile == profile}
    expected = len(settings.seeds)
    cells: dict[tuple[str, int], CellScores] = {(label, n): CellScores(expected) for label in CONFIG_LABELS
                                                for n in GROUP_SIZES}  # fmt: skip
    curves: dict[tuple[str, int], list[np.ndarray]] = {}
    env_steps: dict[tuple[str, int], list[int]] = {}
    for spec, record in results.items():
        if spec.task != TASK or spec.algo != "gpg" or spec.n_envs not in GROUP_SIZES:
            continue
        label = config_label(spec)
        if (label, spec.n_envs) in cells and spec.seed in settings.seeds:
            cells[label, spec.n_envs].add(record)
            curves.setdefault((label, spec.n_envs), []).append(filled_curve(record)[1])
            env_steps.setdefault((label, spec.n_envs), []).append(record["env_steps"])

    rows = [[label, *(cells[label, n].text() for n in GROUP_SIZES)] for label in CONFIG_LABELS]
    table = markdown_table(["binning", *(f"{n} envs" for n in GROUP_SIZES)], rows)

    out = root / "ablation" / profile
    out.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(15, 8.5))
    grid = fig.add_gridspec(2, len(GROUP_SIZES), height_ratios=[1.1, 1])
    bars = fig.add_subplot(grid[0, :])
    width = 0.8 / len(CONFIG_LABELS)
    colors = plt.get_cmap("tab10")
    for i, label in enumerate(CONFIG_LABELS):
        for j, n in enumerate(GROUP_SIZES):
            cell = cells[label, n]
            if not cell.runs:
                continue
            iqm, low, high = interval_estimate(np.asarray(cell.scores))
            bars.bar(j + (i - len(CONFIG_LABELS) / 2 + 0.5) * width, iqm, width, color=colors(i),
                     yerr=[[iqm - low], [high - iqm]], capsize=2, label=label if j == 0 else None)  # fmt: skip
    bars.set_xticks(range(len(GROUP_SIZES)), [f"{n} envs" for n in GROUP_SIZES])
    bars.set_ylabel("final eval return\n(IQM, 95% bootstrap CI)")
    bars.set_xlim(-0.5, len(GROUP_SIZES) - 0.5)
    fig.suptitle(f"GPG on LunarLander-v3: binning and collection ({profile} profile)")
    bars.axhline(0, color="black", lw=0.5)
    bars.grid(axis="y", alpha=0.3)
    bars.legend(fontsize=8, ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    for j, n in enumerate(GROUP_SIZES):
        ax = fig.add_subplot(grid[1, j], sharey=None)
        for i, label in enumerate(CONFIG_LABELS):
            runs = curves.get((label, n))
            if runs:
                length = min(len(run) for run in runs)
                with warnings.catch_warnings():  # all-NaN columns: no episode has ended yet in any seed
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(np.vstack([run[:length] for run in runs]), axis=0)
                ax.plot(np.arange(1, length + 1), mean, color=colors(i), lw=1.1, label=label)
        ax.set_title(f"{n} envs: training episode return (mean over seeds)", fontsize=9)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plot = out / "ablation.png"
    fig.savefig(plot, dpi=110)
    plt.close(fig)

    runs_done = sum(cell.runs for cell in cells.values())
    # Complete-episode rollouts run every env to the end of its episode: the same 200 iterations cost more steps.
    episodes, window = CONFIG_LABELS[-1], CONFIG_LABELS[0]
    steps = "; ".join(
        f"{n} envs {np.mean(env_steps[episodes, n]):,.0f} vs {np.mean(env_steps[window, n]):,.0f} "
        f"({np.mean(env_steps[episodes, n]) / np.mean(env_steps[window, n]):.1f}x)"
        for n in GROUP_SIZES
        if env_steps.get((episodes, n)) and env_steps.get((window, n))
    )
    body = f"""Command: `{command_line()}` (runs: `python benchmarks/learning.py run --profile {profile} --with-ablation`
or `python benchmarks/ablation.py run --profile {profile}`).
Machine: {machine()}, one torch thread per run.
Profile `{profile}`: {settings.description}. {runs_done} of {len(cells) * expected} runs finished.

GPG on LunarLander-v3 with the learning benchmark's hyperparameters; only the binning (and in the last row the
collection mode) changes. The `time` row is the learning benchmark's GPG runs. Cells: final deterministic
evaluation return, mean ± std (IQM [95% bootstrap CI]) over {expected} seeds x {settings.eval_episodes} episodes.

{table}
Env steps per run, `{episodes}` vs `{window}` (mean over seeds): {steps or "no pair finished"}.

![ablation](results/ablation/{profile}/ablation.png)
"""
    body = with_notes(body, out)
    (out / "ablation.md").write_text(body)
    replace_section(results_md, "Binning ablation", body, INTRO, after="Learning benchmark")
    print(body)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "run the missing runs"), ("report", "write the table, plots and RESULTS.md section")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--profile", default="reduced", help=f"protocol: {', '.join(PROFILES)} (default reduced)")
        command.add_argument("--out", type=Path, default=RESULTS, help="results root (default benchmarks/results)")
        if name == "run":
            command.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: the profile's)")
            command.add_argument("--envs", type=int, nargs="+", default=list(GROUP_SIZES),
                                 help=f"group sizes (default {' '.join(map(str, GROUP_SIZES))})")  # fmt: skip
            command.add_argument("--configs", nargs="+", default=list(CONFIG_LABELS),
                                 help=f"configurations (default all: {', '.join(CONFIG_LABELS)})")  # fmt: skip
            command.add_argument("--workers", type=int, default=1, help="parallel run processes (default 1)")
        else:
            command.add_argument("--results-md", type=Path, default=RESULTS.parent / "RESULTS.md",
                                 help="markdown file whose 'Binning ablation' section is rewritten")  # fmt: skip
    args = parser.parse_args(argv)
    check_choice("profile", args.profile, PROFILES)
    if args.command == "run":
        for label in args.configs:
            check_choice("configuration", label, CONFIG_LABELS)
        specs = ablation_specs(args.profile, args.seeds or PROFILES[args.profile].seeds, args.envs, args.configs)
        sys.exit(1 if run_sweep(specs, args.workers, args.out) else 0)
    report(args.profile, args.out, args.results_md)


if __name__ == "__main__":
    main()
