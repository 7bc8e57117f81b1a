"""Prop. 2, measured: the GPG gradient estimator converges to the true policy gradient as the group grows.

On the small tabular MDP of :mod:`sb3_gpg.envs` (exact policy gradient by dynamic programming), the one-step
GPG gradient of N sampled trajectories, with advantages from the package's own
:func:`sb3_gpg.estimator.group_advantages`, is compared with the exact gradient as N grows, for several
binnings ``f`` and for REINFORCE. The plot and the table go to ``--out``.

Usage (from the repository root)::

    python -m benchmarks.consistency --repeats 500 --max-group 16384 --seed 0 --mdp-seed 0 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.report import RESULTS
from sb3_gpg.envs import (
    ESTIMATORS,
    TabularMDP,
    exact_gradient,
    exact_return,
    loglog_slope,
    random_logits,
    random_mdp,
    relative_errors,
)

ESTIMATOR_LABELS = {
    "time": "GPG, time bins f = t",
    "state": "GPG, state bins f = s",
    "state_time": "GPG, state-time bins f = (s, t)",
    "none": "GPG, one universal bin",
    "reinforce": "REINFORCE, no baseline",
}


def _plot(path: Path, group_sizes: list[int], errors: dict[str, np.ndarray], title: str) -> None:
    """Left: error against N on log-log axes. Right: ``sqrt(N) x error``, flat under an ``N^{-1/2}`` rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = np.asarray(group_sizes, dtype=np.float64)
    styles = {
        "time": ("C0", "o", "-"),
        "state": ("C1", "s", "-"),
        "state_time": ("C2", "^", "-"),
        "none": ("C3", "D", "--"),
        "reinforce": ("0.35", "v", ":"),
    }
    banded = ("time", "state")  # the two binnings of the issue; five overlapping bands would read as one smear
    fig, (ax, ax_scaled) = plt.subplots(1, 2, figsize=(11.5, 4.8), constrained_layout=True)
    for name, err in errors.items():
        color, marker, line = styles.get(name, (None, "o", "-"))
        mean = err.mean(axis=1)
        kwargs = dict(marker=marker, linestyle=line, color=color, label=ESTIMATOR_LABELS[name], markersize=5)
        if name in banded:
            low, high = np.percentile(err, [5, 95], axis=1)
            ax.fill_between(sizes, low, high, color=color, alpha=0.15, linewidth=0)
            ax_scaled.fill_between(sizes, low * np.sqrt(sizes), high * np.sqrt(sizes), color=color, alpha=0.12, linewidth=0)
        ax.plot(sizes, mean, **kwargs)
        ax_scaled.plot(sizes, mean * np.sqrt(sizes), **kwargs)
    # The reference sits a factor 3 below the lowest mean curve at the largest N: parallel to the data under
    # an N^{-1/2} rate, without hiding any curve.
    lowest = min(err.mean(axis=1)[-1] for err in errors.values())
    ax.plot(
        sizes,
        lowest / 3 * np.sqrt(sizes[-1] / sizes),
        color="k",
        linewidth=1.0,
        linestyle=(0, (6, 4)),
        label=r"reference $\propto N^{-1/2}$",
    )
    for axis in (ax, ax_scaled):
        axis.set_xscale("log", base=2)
        axis.set_xticks(sizes)
        axis.set_xticklabels([str(n) for n in group_sizes])
        axis.set_xlabel("group size N (trajectories)")
        axis.grid(True, which="major", alpha=0.3)
    ax.set_yscale("log")
    ax.set_ylabel(r"relative error $\|g_N - \nabla\eta\| \,/\, \|\nabla\eta\|$")
    ax.set_title("error against group size (5-95% bands: time, state)", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax_scaled.set_ylim(bottom=0)
    ax_scaled.set_ylabel(r"$\sqrt{N}\,\times$ relative error")
    ax_scaled.set_title(r"error $\times \sqrt{N}$: flat under an $N^{-1/2}$ rate, lower = less variance", fontsize=10)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _markdown(
    command: str,
    mdp: TabularMDP,
    group_sizes: list[int],
    errors: dict[str, np.ndarray],
    repeats: int,
    seconds: float,
    gradient_norm: float,
    eta: float,
) -> str:
    lines = [
        "# Prop. 2, measured: GPG gradient error against group size",
        "",
        f"Tabular MDP: {mdp.n_states} states, {mdp.n_actions} actions, fixed horizon T = {mdp.horizon}, "
        f"undiscounted, random dense transitions (states are revisited), softmax policy at random logits "
        f"(eta = {eta:.4f}, ||grad eta|| = {gradient_norm:.4f}). One-step estimator (rho = 1) "
        "g_N = (1/N) sum_n sum_t A_t^n grad log pi(a_t^n | s_t^n), advantages from "
        "`sb3_gpg.estimator.group_advantages`, exact gradient by dynamic programming.",
        "",
        f"Relative error ||g_N - grad eta|| / ||grad eta||: mean over {repeats} independent groups per N, "
        "[5%, 95%] quantiles in brackets. All estimators see the same groups.",
        "",
        "| N | " + " | ".join(ESTIMATOR_LABELS[name] for name in errors) + " |",
        "| ---: | " + " | ".join("---:" for _ in errors) + " |",
    ]
    for i, n in enumerate(group_sizes):
        cells = []
        for err in errors.values():
            low, high = np.percentile(err[i], [5, 95])
            cells.append(f"{err[i].mean():.4f} [{low:.4f}, {high:.4f}]")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    fit_from = next((i for i, n in enumerate(group_sizes) if n >= 64), 0)
    fit_sizes = group_sizes[fit_from:]
    slopes = ", ".join(f"{name} {loglog_slope(fit_sizes, err.mean(axis=1)[fit_from:]):+.3f}" for name, err in errors.items())
    lines += [
        "",
        f"Log-log slope of the mean error for N >= {fit_sizes[0]} (theory: -1/2): {slopes}.",
        "",
        "![error against group size](consistency.png)",
        "",
        f"Command ({seconds:.0f} s):",
        "",
        "```",
        command,
        "```",
        "",
    ]
    return "\n".join(lines)


def progress(sizes: list[int], show: bool) -> Iterable[int]:
    if not show:
        return sizes
    from tqdm import tqdm

    return tqdm(sizes, unit="group size", desc="group sizes")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the sweep, print the table and write ``consistency.png`` and ``consistency.md``."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=500, help="independent groups per group size")
    parser.add_argument("--max-group", type=int, default=16384, help="largest group size (sizes are 4, 16, 64, ...)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the trajectory sampling")
    parser.add_argument("--mdp-seed", type=int, default=0, help="seed of the MDP and of the policy logits")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.max_group < 4 or args.repeats < 1:
        parser.error("--max-group must be at least 4 and --repeats at least 1")

    mdp = random_mdp(seed=args.mdp_seed)
    logits = random_logits(mdp.n_states, mdp.n_actions, seed=args.mdp_seed + 1)
    group_sizes = [4**k for k in range(1, 32) if 4**k <= args.max_group]
    out = args.out
    try:
        out_display = out.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        out_display = str(out)
    # Every option written out, so the command reproduces the run even if the defaults change.
    options = {
        "--repeats": args.repeats,
        "--max-group": args.max_group,
        "--seed": args.seed,
        "--mdp-seed": args.mdp_seed,
        "--out": out_display,
    }
    command = shlex.join(["python", "-m", __spec__.name, *(str(part) for item in options.items() for part in item)])

    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    # One group size at a time from the same generator: the same draws as one call, with progress in between.
    per_size = [relative_errors(mdp, logits, [n], args.repeats, rng) for n in progress(group_sizes, not args.no_progress)]
    errors = {name: np.concatenate([errors[name] for errors in per_size]) for name in ESTIMATORS}
    seconds = time.perf_counter() - start

    out.mkdir(parents=True, exist_ok=True)
    truth = exact_gradient(mdp, logits)
    title = (
        f"Prop. 2, measured: one-step GPG gradient against the exact gradient on a tabular MDP "
        f"(S={mdp.n_states}, A={mdp.n_actions}, T={mdp.horizon}), mean over {args.repeats} groups per N"
    )
    _plot(out / "consistency.png", group_sizes, errors, title)
    text = _markdown(
        command, mdp, group_sizes, errors, args.repeats, seconds, float(np.linalg.norm(truth)), exact_return(mdp, logits)
    )
    (out / "consistency.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
