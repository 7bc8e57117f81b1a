"""Estimator and loss variants of GPG against the paper's time binning (the issue's ablation).

Each variant changes one thing of GPG with time binning, window collection and the learning benchmark's
hyperparameters (``harness.TASKS``, profile ``--profile``), on LunarLander-v3 and CartPole-v1 at a small and a
large group size (4 and 32 envs by default):

- ``time``: the paper's GPG (GPG's defaults). These are the learning benchmark's GPG runs, shared, not repeated.
- ``leave-one-out``: ``baseline="leave_one_out"`` (the U-statistic baseline, arXiv 2603.01162).
- ``bin-std``: ``advantage_scale="bin_std"`` (GRPO's per-group std scaling).
- ``signal-rescale``: ``signal_rescale=True`` (the correction of arXiv 2504.02546 for bins without signal).
- ``pg-objective``: ``objective="pg"`` (the plain policy-gradient objective of arXiv 2504.02546, no clipping).
- ``space-time ε``: space-time binning alone (fine bins starve at small group sizes, paper Figure 4; on
  LunarLander this is the binning ablation's run, shared), and with the sparse-bin fallback:
  ``space-time ε, replace k`` (``min_bin_samples=k, bin_fallback="replace"``: space-time → time → universal)
  and ``space-time ε, shrink k`` (``bin_fallback="shrink"``). The fallback should let the fine binning match or
  beat time binning at every group size.

Usage (from the repository root)::

    python -m benchmarks.variants plan --profile reduced              # the runs and a duration estimate
    python -m benchmarks.variants run --profile reduced --workers 1   # resumable: one JSON per finished run
    python -m benchmarks.variants report --profile reduced            # table, plot, RESULTS.md section

A variant's options are part of its run spec (``harness.RunSpec.options``), so its runs are ordinary harness runs.
Runs without options (``time``, ``space-time ε``) are written where the learning benchmark and the binning ablation
write them; the others go to ``benchmarks/results/variants/<profile>/<task>/<variant>_n<envs>_s<seed>.json``.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import cli
from benchmarks.harness import PROFILES, TASKS, RunSpec, check_choice, estimate_minutes, run_one
from benchmarks.report import CellScores, filled_curve, interval_estimate, machines, markdown_table
from benchmarks.sweep import Run

GROUP_SIZES = (4, 32)


@dataclass(frozen=True)
class Variant:
    """One configuration: a binning and the GPG options beyond it (none: a plain harness run)."""

    label: str
    binning: str = "time"
    bin_size: float = 1.0
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def slug(self) -> str:
        """File-name form of the label: ``space-time ε=0.5, shrink k=4`` -> ``space-time-eps0.5-shrink-k4``."""
        return re.sub(r"[^A-Za-z0-9.=-]+", "-", self.label.replace("ε=", "eps").replace("k=", "k")).strip("-")

    def run(self, task: str, n_envs: int, seed: int, profile: str) -> Run:
        spec = RunSpec(task, "gpg", n_envs, seed, profile, binning=self.binning, bin_size=self.bin_size,
                       options=self.options)  # fmt: skip
        if not self.options:
            return Run(spec, spec.result_file)  # the learning benchmark's or the binning ablation's file
        return Run(spec, f"variants/{profile}/{task}/{self.slug}_n{n_envs}_s{seed}.json")


def make_variants(bin_size: float = 0.5, min_bin_samples: int = 4) -> tuple[Variant, ...]:
    fine = dict(binning="space_time", bin_size=bin_size)
    return (
        Variant("time"),
        Variant("leave-one-out", options=(("baseline", "leave_one_out"),)),
        Variant("bin-std", options=(("advantage_scale", "bin_std"),)),
        Variant("signal-rescale", options=(("signal_rescale", True),)),
        Variant("pg-objective", options=(("objective", "pg"),)),
        Variant(f"space-time ε={bin_size:g}", **fine),
        Variant(
            f"space-time ε={bin_size:g}, replace k={min_bin_samples}",
            **fine,
            options=(("min_bin_samples", min_bin_samples), ("bin_fallback", "replace")),
        ),
        Variant(
            f"space-time ε={bin_size:g}, shrink k={min_bin_samples}",
            **fine,
            options=(("min_bin_samples", min_bin_samples), ("bin_fallback", "shrink")),
        ),
    )


def chosen_variants(args: argparse.Namespace) -> tuple[Variant, ...]:
    """The variants of ``--variants`` (all by default), always with ``time``, the reference."""
    variants = make_variants(args.bin_size, args.min_bin_samples)
    if not args.variants:
        return variants
    for label in args.variants:
        check_choice("variant", label, [v.label for v in variants])
    return tuple(v for v in variants if v.label in args.variants or v.label == "time")


def variant_runs(args: argparse.Namespace) -> list[tuple[Variant, Run]]:
    """Seed by seed, then group size, then task, then variant: an interrupted sweep holds paired cells."""
    return [
        (variant, variant.run(task, n_envs, seed, args.profile))
        for seed in args.seeds or PROFILES[args.profile].seeds
        for n_envs in args.envs
        for task in args.tasks
        for variant in chosen_variants(args)
    ]


def plan(args: argparse.Namespace) -> list[Run]:
    return [run for _, run in variant_runs(args)]


def compare(variant: CellScores, reference: CellScores) -> str:
    """``better`` / ``worse`` when the 95% CIs of the IQMs do not overlap, else ``no clear difference``."""
    if not variant.runs or not reference.runs:
        return "-"
    _, low, high = interval_estimate(np.asarray(variant.scores))
    _, ref_low, ref_high = interval_estimate(np.asarray(reference.scores))
    if low > ref_high:
        return "better"
    if high < ref_low:
        return "worse"
    return "no clear difference"


def report(args: argparse.Namespace, runs: list[Run], records: dict[Run, dict]) -> str:
    """Per task: final evaluation of each variant at each group size, compared with time binning; a plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profile, sizes, variants = args.profile, args.envs, chosen_variants(args)
    settings = PROFILES[profile]
    expected = len(args.seeds or settings.seeds)
    tasks = list(dict.fromkeys(run.spec.task for run in runs))
    label = {run: variant.label for variant, run in variant_runs(args)}
    cells = {(task, v.label, n): CellScores(expected) for task in tasks for v in variants for n in sizes}
    curves: dict[tuple[str, str, int], list[np.ndarray]] = {}
    for run, record in records.items():
        key = (run.spec.task, label[run], run.spec.n_envs)
        cells[key].add(record)
        curves.setdefault(key, []).append(filled_curve(record)[1])

    sections, out = [], args.folder
    width = max(5.5 * len(sizes), 11)
    fig, axes = plt.subplots(len(tasks), len(sizes), figsize=(width, 3.6 * len(tasks) + 1), squeeze=False)
    colors = plt.get_cmap("tab10")
    for row, task in enumerate(tasks):
        rows = []
        for v in variants:
            cell_texts = []
            for n in sizes:
                cell = cells[task, v.label, n]
                versus = "" if v.label == "time" else f"; vs time: {compare(cell, cells[task, 'time', n])}"
                cell_texts.append(cell.text() + versus)
            rows.append([v.label, *cell_texts])
        header = ["variant", *(f"{n} envs" for n in sizes)]
        sections.append(f"**{TASKS[task].env_id}**\n\n{markdown_table(header, rows)}")
        for col, n in enumerate(sizes):
            ax = axes[row][col]
            for i, v in enumerate(variants):
                if curves.get((task, v.label, n)):
                    length = min(len(c) for c in curves[task, v.label, n])
                    with np.errstate(all="ignore"):
                        mean = np.nanmean(np.vstack([c[:length] for c in curves[task, v.label, n]]), axis=0)
                    ax.plot(np.arange(1, length + 1), mean, color=colors(i % 10), lw=1.1, label=v.label)
            ax.set_title(f"{TASKS[task].env_id}, {n} envs", fontsize=9)
            ax.set_xlabel("iteration")
            ax.set_ylabel("training episode return")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"GPG estimator variants against time binning ({profile} profile; mean over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    plot = out / "variants.png"
    fig.savefig(plot, dpi=100)
    plt.close(fig)

    done = sum(cell.runs for cell in cells.values())
    options = "\n".join(f"- `{v.label}`: binning `{v.binning}`"
                        + (f" ε={v.bin_size:g}" if v.binning != "time" else "")
                        + "".join(f", `{k}={val!r}`" for k, val in v.options) for v in variants)  # fmt: skip
    return f"""Command: `{args.command_line}` (runs: `python -m benchmarks.variants run --profile {profile}`).
Machine: {machines(records.values())}, one torch thread per run.
Profile `{profile}`: {settings.description}. {done} of {len(cells) * expected} runs finished.

GPG with the learning benchmark's hyperparameters; each variant changes what its name says:

{options}

Cells: final deterministic evaluation return, mean ± std (IQM [95% bootstrap CI]) over {expected} seeds x
{settings.eval_episodes} episodes; "vs time": `better` or `worse` when the IQM's CI does not overlap time binning's.
A default changes only on a clear, repeated win.

{chr(10).join(sections)}
![variants](results/variants/{profile}/variants.png)
"""


def arguments(command: argparse.ArgumentParser, name: str) -> None:
    command.add_argument("--bin-size", type=float, default=0.5, help="ε of the space-time variants (default 0.5)")
    command.add_argument("--min-bin-samples", type=int, default=4, help="k of the fallback variants (default 4)")
    command.add_argument("--variants", nargs="+", help="variant labels (default all)")


SUITE = cli.Suite(name="variants", doc=__doc__, section="Estimator variants", plan=plan, runner=run_one, report=report,
                  tasks=("lunarlander", "cartpole"), sizes=GROUP_SIZES, arguments=arguments,
                  estimate=estimate_minutes)  # fmt: skip

if __name__ == "__main__":
    cli.main(SUITE)
