"""Estimator and loss variants of GPG against the paper's time binning (the issue's ablation).

Each variant changes one thing of GPG with time binning, window collection and the learning benchmark's
hyperparameters (``common.TASKS``, profile ``--profile``), on LunarLander-v3 and CartPole-v1 at a small and a
large group size (4 and 32 envs by default):

- ``time``: the paper's GPG (GPG's defaults). These are the learning benchmark's GPG runs, shared, not repeated.
- ``leave-one-out``: ``baseline="leave_one_out"`` (the U-statistic baseline, seeds/003).
- ``bin-std``: ``advantage_scale="bin_std"`` (GRPO's per-group std scaling).
- ``signal-rescale``: ``signal_rescale=True`` (seeds/001's correction for bins without signal).
- ``pg-objective``: ``objective="pg"`` (seeds/001's plain policy-gradient objective, no clipping).
- ``space-time ε``: space-time binning alone (fine bins starve at small group sizes, paper Figure 4; on
  LunarLander this is the binning ablation's run, shared), and with the sparse-bin fallback:
  ``space-time ε, replace k`` (``min_bin_samples=k, bin_fallback="replace"``: space-time → time → universal)
  and ``space-time ε, shrink k`` (``bin_fallback="shrink"``). The fallback should let the fine binning match or
  beat time binning at every group size.

Usage (from the repository root)::

    python benchmarks/variants.py plan --profile reduced              # the runs and a duration estimate
    python benchmarks/variants.py run --profile reduced --workers 1   # resumable: one JSON per finished run
    python benchmarks/variants.py report --profile reduced            # table, plot, RESULTS.md section

Runs reuse the harness of ``learning.py`` (``common.run_one``: training, evaluation, learning curve, record).
Runs that are plain harness runs (``time``, ``space-time ε``) are written where the learning benchmark and the
binning ablation write them; the others go to
``benchmarks/results/variants/<profile>/<task>/<variant>_n<envs>_s<seed>.json``. Their record keeps the
harness's spec under ``harness_spec`` (not ``spec``), so that ``common.load_results`` does not mistake them for
the plain GPG run of the same task, env count and binning.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from ablation import INTRO
from common import (
    PROFILES,
    RESULTS,
    CellScores,
    RunSpec,
    check_choice,
    command_line,
    filled_curve,
    interval_estimate,
    machine,
    markdown_table,
    parse_sweep_args,
    replace_section,
    run_sweep,
    sweep_parser,
    with_notes,
)

TASKS = ("lunarlander", "cartpole")
GROUP_SIZES = (4, 32)
SECTION = "Estimator variants"  # of RESULTS.md
# Minutes per GPG run in the reduced profile, from benchmarks/results/learning/reduced/throughput.md (2-core
# machine with one core busy, ±50%); used by `plan` only.
REDUCED_MINUTES = {("lunarlander", 1): 2.3, ("lunarlander", 4): 3.4, ("lunarlander", 16): 3.2,
                   ("lunarlander", 32): 4.2, ("cartpole", 1): 0.3, ("cartpole", 4): 0.2, ("cartpole", 16): 0.5,
                   ("cartpole", 32): 1.3, ("cartpole", 128): 4.9}  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """One configuration: a binning and the GPG arguments beyond the harness's (none: a plain harness run)."""

    label: str
    binning: str = "time"
    bin_size: float = 1.0
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def slug(self) -> str:
        """File-name form of the label: ``space-time ε=0.5, shrink k=4`` -> ``space-time-eps0.5-shrink-k4``."""
        return re.sub(r"[^A-Za-z0-9.=-]+", "-", self.label.replace("ε=", "eps").replace("k=", "k")).strip("-")


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


@dataclass(frozen=True)
class VariantRun:
    """A variant's run: the harness's run spec (task, env count, seed, profile, binning) and the extra options."""

    variant: Variant
    spec: RunSpec

    @property
    def name(self) -> str:
        return f"{self.spec.task}/{self.variant.label}/n{self.spec.n_envs}/s{self.spec.seed}"

    def path(self, root: Path = RESULTS) -> Path:
        if not self.variant.options:
            return self.spec.path(root)  # the learning benchmark's or the binning ablation's file
        spec = self.spec
        return root / "variants" / spec.profile / spec.task / f"{self.variant.slug}_n{spec.n_envs}_s{spec.seed}.json"


def variant_runs(
    profile: str, tasks: Sequence[str], sizes: Sequence[int], seeds: Sequence[int], variants: Sequence[Variant]
) -> list[VariantRun]:
    """Seed by seed, then group size, then task, then variant: an interrupted sweep holds paired cells."""
    return [
        VariantRun(variant, RunSpec(task, "gpg", n_envs, seed, profile, binning=variant.binning, bin_size=variant.bin_size))
        for seed in seeds
        for n_envs in sizes
        for task in tasks
        for variant in variants
    ]


@contextlib.contextmanager
def extra_gpg_arguments(options: dict[str, Any]) -> Iterator[None]:
    """``common.run_one`` builds its model from ``common.hyperparameters(spec)``, which knows the harness's
    arguments only; for the duration of a run the variant's are added to them (so they also land in the
    record's ``hyperparameters``)."""
    harness_hyperparameters = common.hyperparameters

    def with_options(spec: RunSpec) -> dict[str, Any]:
        return {**harness_hyperparameters(spec), **options}

    common.hyperparameters = with_options
    try:
        yield
    finally:
        common.hyperparameters = harness_hyperparameters


def run_variant(run: VariantRun, progress_position: int = 0) -> dict[str, Any]:
    """Train and evaluate one variant run with the harness; return its record."""
    if not run.variant.options:
        return common.run_one(run.spec, progress_position)
    options = dict(run.variant.options)
    with extra_gpg_arguments(options):
        record = common.run_one(run.spec, progress_position)
    record["harness_spec"] = record.pop("spec")
    record["variant"] = dict(label=run.variant.label, options=options)
    return record


def plan(runs: Sequence[VariantRun], root: Path) -> None:
    todo = [run for run in runs if not run.path(root).exists()]
    minutes = [REDUCED_MINUTES.get((run.spec.task, run.spec.n_envs)) for run in todo]
    known = [m for m in minutes if m is not None]
    print(f"{len(runs)} runs, {len(runs) - len(todo)} done, {len(todo)} to run:")
    for run in todo:
        print(f"  {run.spec.task} n{run.spec.n_envs} s{run.spec.seed} {run.variant.label} -> {run.path(root)}")
    if runs and runs[0].spec.profile == "reduced":
        print(
            f"Estimated {sum(known) / 60:.1f} CPU hours for {len(known)} of them (reduced-profile throughput, ±50%; "
            "space-time runs cost a little more), i.e. about half that with --workers 2 on 2 free cores."
        )


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


def report(profile: str, runs: Sequence[VariantRun], variants: Sequence[Variant], sizes: Sequence[int],
           root: Path, results_md: Path) -> None:  # fmt: skip
    """Per task: final evaluation of each variant at each group size, compared with time binning; a plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = PROFILES[profile]
    expected = len(settings.seeds)
    tasks = list(dict.fromkeys(run.spec.task for run in runs))
    cells = {(task, v.label, n): CellScores(expected) for task in tasks for v in variants for n in sizes}
    curves: dict[tuple[str, str, int], list[np.ndarray]] = {}
    for run in runs:
        path = run.path(root)
        if path.exists():
            record = json.loads(path.read_text())
            key = (run.spec.task, run.variant.label, run.spec.n_envs)
            cells[key].add(record)
            curves.setdefault(key, []).append(filled_curve(record)[1])

    sections, out = [], root / "variants" / profile
    out.mkdir(parents=True, exist_ok=True)
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
        sections.append(f"**{common.TASKS[task].env_id}**\n\n{markdown_table(header, rows)}")
        for col, n in enumerate(sizes):
            ax = axes[row][col]
            for i, v in enumerate(variants):
                if curves.get((task, v.label, n)):
                    length = min(len(c) for c in curves[task, v.label, n])
                    with np.errstate(all="ignore"):
                        mean = np.nanmean(np.vstack([c[:length] for c in curves[task, v.label, n]]), axis=0)
                    ax.plot(np.arange(1, length + 1), mean, color=colors(i % 10), lw=1.1, label=v.label)
            ax.set_title(f"{common.TASKS[task].env_id}, {n} envs", fontsize=9)
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
    body = f"""Command: `{command_line()}` (runs: `python benchmarks/variants.py run --profile {profile}`).
Machine: {machine()}, one torch thread per run.
Profile `{profile}`: {settings.description}. {done} of {len(cells) * expected} runs finished.

GPG with the learning benchmark's hyperparameters; each variant changes what its name says:

{options}

Cells: final deterministic evaluation return, mean ± std (IQM [95% bootstrap CI]) over {expected} seeds x
{settings.eval_episodes} episodes; "vs time": `better` or `worse` when the IQM's CI does not overlap time binning's.
A default changes only on a clear, repeated win.

{chr(10).join(sections)}
![variants](results/variants/{profile}/variants.png)
"""
    body = with_notes(body, out)
    (out / "variants.md").write_text(body)
    replace_section(results_md, SECTION, body, INTRO)
    print(body)


def main(argv: Sequence[str] | None = None) -> None:
    def variant_arguments(command: argparse.ArgumentParser, name: str) -> None:
        command.add_argument("--bin-size", type=float, default=0.5, help="ε of the space-time variants (default 0.5)")
        command.add_argument("--min-bin-samples", type=int, default=4, help="k of the fallback variants (default 4)")
        command.add_argument("--variants", nargs="+", help="variant labels (default all)")

    helps = {"plan": "list the missing runs and estimate their duration", "run": "run the missing runs",
             "report": "write the tables, the plot and the RESULTS.md section"}  # fmt: skip
    args = parse_sweep_args(sweep_parser(__doc__, helps, TASKS, GROUP_SIZES, SECTION, variant_arguments), argv)
    variants = make_variants(args.bin_size, args.min_bin_samples)
    if args.variants:
        for label in args.variants:
            check_choice("variant", label, [v.label for v in variants])
        variants = tuple(v for v in variants if v.label in args.variants or v.label == "time")
    runs = variant_runs(args.profile, args.tasks, args.envs, args.seeds or PROFILES[args.profile].seeds, variants)
    if args.command == "plan":
        plan(runs, args.out)
    elif args.command == "run":
        sys.exit(1 if run_sweep(runs, args.workers, args.out, runner=run_variant) else 0)
    else:
        report(args.profile, runs, variants, args.envs, args.out, args.results_md)


if __name__ == "__main__":
    main()
