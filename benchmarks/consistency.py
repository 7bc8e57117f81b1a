"""Prop. 2, measured: the GPG gradient estimator converges to the true policy gradient as the group grows.

On a small finite-horizon tabular MDP with a softmax policy, the exact policy gradient follows from dynamic
programming over ``(t, s)``. The one-step GPG estimator (``rho = 1``)

    g_N = (1/N) sum_n sum_t A_t^n grad log pi(a_t^n | s_t^n),   A_t^n = R_t^n - b_N(f(s_t^n, t)),

is computed from N sampled trajectories with the package's own :func:`sb3_gpg.estimator.group_advantages`,
and its relative error against the exact gradient is measured as N grows, for several binnings ``f``.

The MDP is undiscounted and lasts exactly ``horizon`` steps, the setting of Prop. 2. Its states can be
revisited within a trajectory, so state binning exercises the first-visit rule of Algorithm 2.

Run ``python benchmarks/consistency.py --help`` for the sweep's options. The functions are importable (the
tests in ``tests/test_consistency.py`` use them).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    from sb3_gpg.estimator import group_advantages
except ImportError:  # run as a script from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sb3_gpg.estimator import group_advantages

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Advantage estimators compared: GPG with four binnings, and REINFORCE (``A = R``, no baseline).
ESTIMATORS = ("time", "state", "state_time", "none", "reinforce")

ESTIMATOR_LABELS = {
    "time": "GPG, time bins f = t",
    "state": "GPG, state bins f = s",
    "state_time": "GPG, state-time bins f = (s, t)",
    "none": "GPG, one universal bin",
    "reinforce": "REINFORCE, no baseline",
}


@dataclass(frozen=True)
class TabularMDP:
    """
    A finite-horizon MDP with finite state and action sets, undiscounted.

    :param transitions: ``(S, A, S)`` probabilities ``P(s' | s, a)``.
    :param rewards: ``(S, A)`` deterministic rewards ``r(s, a)``.
    :param initial: ``(S,)`` initial-state distribution.
    :param horizon: Every episode lasts exactly this many steps.
    """

    transitions: np.ndarray
    rewards: np.ndarray
    initial: np.ndarray
    horizon: int

    @property
    def n_states(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_actions(self) -> int:
        return self.rewards.shape[1]


@dataclass(frozen=True)
class Rollouts:
    """``N`` complete trajectories as ``(horizon, N)`` arrays: one column per trajectory, rows in time order."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray


def random_mdp(n_states: int = 5, n_actions: int = 3, horizon: int = 5, seed: int = 0) -> TabularMDP:
    """
    Draw a random tabular MDP.

    Transition rows are Dirichlet(1) (dense: every state is reachable, revisits are common), rewards are
    uniform on ``[-1, 1]`` and the initial distribution is Dirichlet(1).

    :param n_states: Number of states.
    :param n_actions: Number of actions.
    :param horizon: Episode length ``T``.
    :param seed: Seed of the draw.
    :return: The MDP.
    """
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    rewards = rng.uniform(-1.0, 1.0, size=(n_states, n_actions))
    initial = rng.dirichlet(np.ones(n_states))
    return TabularMDP(transitions, rewards, initial, horizon)


def random_logits(n_states: int, n_actions: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """
    Draw softmax-policy parameters ``theta`` of shape ``(S, A)``, standard normal times ``scale``.

    A non-uniform policy matters: at uniform ``theta`` symmetries can hide errors in the score function.
    """
    return scale * np.random.default_rng(seed).standard_normal((n_states, n_actions))


def softmax_policy(logits: np.ndarray) -> np.ndarray:
    """``pi(a | s) = softmax(theta[s])`` as an ``(S, A)`` array."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def dynamic_programming(mdp: TabularMDP, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Exact finite-horizon quantities of the softmax policy.

    :param mdp: The MDP.
    :param logits: ``(S, A)`` policy parameters.
    :return: State distributions ``d_t(s) = P(s_t = s)`` ``(T, S)``, action values ``Q_t(s, a)`` ``(T, S, A)``
        and values ``V_t(s)`` ``(T, S)``, where ``Q_t`` and ``V_t`` are the expected rewards from step ``t``
        to the end of the episode.
    """
    policy = softmax_policy(logits)
    T, S, A = mdp.horizon, mdp.n_states, mdp.n_actions
    visits = np.empty((T, S))
    visits[0] = mdp.initial
    for t in range(T - 1):
        visits[t + 1] = np.einsum("s,sa,sap->p", visits[t], policy, mdp.transitions)
    q_values = np.empty((T, S, A))
    values = np.empty((T + 1, S))
    values[T] = 0.0  # the episode ends after T steps: nothing to bootstrap
    for t in range(T - 1, -1, -1):
        q_values[t] = mdp.rewards + mdp.transitions @ values[t + 1]
        values[t] = np.sum(policy * q_values[t], axis=1)
    return visits, q_values, values[:T]


def exact_return(mdp: TabularMDP, logits: np.ndarray) -> float:
    """The expected undiscounted return ``eta(theta) = E[sum_t r_t]``, exactly."""
    _, _, values = dynamic_programming(mdp, logits)
    return float(mdp.initial @ values[0])


def exact_gradient(mdp: TabularMDP, logits: np.ndarray) -> np.ndarray:
    """
    The policy gradient ``grad eta(theta)``, exactly, as an ``(S, A)`` array.

    ``grad eta = sum_t sum_s d_t(s) sum_a pi(a|s) grad log pi(a|s) Q_t(s, a)``, and for a tabular softmax
    ``grad_{theta[s, b]} log pi(a|s) = 1[a = b] - pi(b|s)``, so the component ``(s, b)`` collapses to
    ``sum_t d_t(s) pi(b|s) (Q_t(s, b) - V_t(s))``.
    """
    visits, q_values, values = dynamic_programming(mdp, logits)
    policy = softmax_policy(logits)
    return np.einsum("ts,sa,tsa->sa", visits, policy, q_values - values[:, :, None])


def finite_difference_gradient(mdp: TabularMDP, logits: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central finite differences of :func:`exact_return`, an independent check of :func:`exact_gradient`."""
    gradient = np.empty_like(logits, dtype=np.float64)
    for index in np.ndindex(logits.shape):
        shift = np.zeros_like(logits, dtype=np.float64)
        shift[index] = step
        gradient[index] = (exact_return(mdp, logits + shift) - exact_return(mdp, logits - shift)) / (2 * step)
    return gradient


def _sample_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``(n, k)`` probabilities, by inverting the row's CDF."""
    cdf = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities)) * cdf[:, -1]  # scaled by the last entry: robust to rounding of the sum
    return np.minimum((u[:, None] >= cdf).sum(axis=1), probabilities.shape[1] - 1)


def sample_trajectories(mdp: TabularMDP, logits: np.ndarray, n: int, rng: np.random.Generator) -> Rollouts:
    """
    Sample ``n`` iid trajectories of the softmax policy, vectorized across trajectories.

    :param mdp: The MDP.
    :param logits: ``(S, A)`` policy parameters.
    :param n: Number of trajectories (the group size N).
    :param rng: Random generator.
    :return: ``(horizon, n)`` states, actions and rewards.
    """
    policy = softmax_policy(logits)
    T = mdp.horizon
    states = np.empty((T, n), dtype=np.int64)
    actions = np.empty((T, n), dtype=np.int64)
    states[0] = _sample_rows(np.broadcast_to(mdp.initial, (n, mdp.n_states)), rng)
    for t in range(T):
        actions[t] = _sample_rows(policy[states[t]], rng)
        if t + 1 < T:
            states[t + 1] = _sample_rows(mdp.transitions[states[t], actions[t]], rng)
    return Rollouts(states, actions, mdp.rewards[states, actions])


def score_weighted_mean(policy: np.ndarray, states: np.ndarray, actions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """
    ``(1/N) sum_n sum_t w_t^n grad log pi(a_t^n | s_t^n)`` for a tabular softmax policy.

    The score of step ``(s, a)`` is ``onehot(a) - pi(.|s)`` on row ``s`` of ``theta`` and 0 elsewhere, so the
    sum splits into a weighted count of ``(s, a)`` pairs minus ``pi`` times a weighted count of states.

    :param policy: ``(S, A)`` action probabilities.
    :param states: ``(T, N)`` states.
    :param actions: ``(T, N)`` actions.
    :param weights: ``(T, N)`` per-step weights (the advantages).
    :return: ``(S, A)`` gradient estimate.
    """
    S, A = policy.shape
    n = states.shape[1]
    s, a, w = states.ravel(), actions.ravel(), np.asarray(weights, dtype=np.float64).ravel()
    pair_sums = np.bincount(s * A + a, weights=w, minlength=S * A).reshape(S, A)
    state_sums = np.bincount(s, weights=w, minlength=S)
    return (pair_sums - state_sums[:, None] * policy) / n


def bin_keys(rollouts: Rollouts, binning: str) -> np.ndarray:
    """Bin keys ``f(s_t, t)`` of shape ``(T, N)`` (or ``(T, N, 2)`` for ``state_time``) for a named binning."""
    T, n = rollouts.states.shape
    times = np.broadcast_to(np.arange(T)[:, None], (T, n))
    if binning == "time":
        return times
    if binning == "state":
        return rollouts.states
    if binning == "state_time":
        return np.stack((rollouts.states, times), axis=-1)
    if binning == "none":
        return np.zeros((T, n), dtype=np.int64)
    raise ValueError(f"Unknown binning {binning!r}: expected one of time, state, state_time, none.")


def gpg_gradient(logits: np.ndarray, rollouts: Rollouts, estimator: str) -> np.ndarray:
    """
    The one-step (``rho = 1``) policy-gradient estimate of one group of complete trajectories.

    :param logits: ``(S, A)`` policy parameters the trajectories were sampled with.
    :param rollouts: The group: ``(T, N)`` complete, undiscounted trajectories.
    :param estimator: A binning of ``ESTIMATORS`` (GPG advantages from Algorithm 2) or ``"reinforce"``
        (advantage = return-to-go, no baseline).
    :return: ``(S, A)`` gradient estimate ``g_N``.
    """
    episode_starts = np.zeros(rollouts.rewards.shape, dtype=bool)
    episode_starts[0] = True
    binning = "none" if estimator == "reinforce" else estimator
    result = group_advantages(
        rollouts.rewards,
        episode_starts,
        bin_keys(rollouts, binning),
        gamma=1.0,
        keys_include_time=binning in ("time", "state_time"),
    )
    weights = result.returns if estimator == "reinforce" else result.advantages
    return score_weighted_mean(softmax_policy(logits), rollouts.states, rollouts.actions, weights)


def relative_errors(
    mdp: TabularMDP,
    logits: np.ndarray,
    group_sizes: Sequence[int],
    repeats: int,
    rng: np.random.Generator,
    estimators: Sequence[str] = ESTIMATORS,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """
    Relative L2 errors ``||g_N - grad eta|| / ||grad eta||`` over independent groups.

    All estimators see the same groups (common random numbers), so their differences are not sampling noise
    of separate draws.

    :param mdp: The MDP.
    :param logits: ``(S, A)`` policy parameters.
    :param group_sizes: Group sizes N to measure.
    :param repeats: Independent groups per group size.
    :param rng: Random generator.
    :param estimators: Names from ``ESTIMATORS``.
    :param progress: Show a tqdm progress bar (if tqdm is installed).
    :return: For each estimator, a ``(len(group_sizes), repeats)`` array of relative errors.
    """
    truth = exact_gradient(mdp, logits)
    norm = np.linalg.norm(truth)
    errors = {name: np.empty((len(group_sizes), repeats)) for name in estimators}
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(group_sizes) * repeats, unit="group", desc="groups")
        except ImportError:
            pass
    for i, n in enumerate(group_sizes):
        for r in range(repeats):
            rollouts = sample_trajectories(mdp, logits, n, rng)
            for name in estimators:
                errors[name][i, r] = np.linalg.norm(gpg_gradient(logits, rollouts, name) - truth) / norm
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return errors


def loglog_slope(group_sizes: Sequence[int], mean_errors: np.ndarray) -> float:
    """Least-squares slope of ``log(error)`` against ``log(N)`` (``-1/2`` for a ``N^{-1/2}`` decay)."""
    return float(np.polyfit(np.log(np.asarray(group_sizes, dtype=np.float64)), np.log(mean_errors), 1)[0])


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


def main(argv: Sequence[str] | None = None) -> None:
    """Run the sweep, print the table and write ``consistency.png`` and ``consistency.md``."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=500, help="independent groups per group size")
    parser.add_argument("--max-group", type=int, default=16384, help="largest group size (sizes are 4, 16, 64, ...)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the trajectory sampling")
    parser.add_argument("--mdp-seed", type=int, default=0, help="seed of the MDP and of the policy logits")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results", help="output directory")
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
    script = Path(__file__).resolve()
    try:
        script_display = script.relative_to(Path.cwd()).as_posix()
    except ValueError:
        script_display = str(script)
    options = {
        "--repeats": args.repeats,
        "--max-group": args.max_group,
        "--seed": args.seed,
        "--mdp-seed": args.mdp_seed,
        "--out": out_display,
    }
    command = shlex.join(["python", script_display, *(str(part) for item in options.items() for part in item)])

    start = time.perf_counter()
    errors = relative_errors(
        mdp, logits, group_sizes, args.repeats, np.random.default_rng(args.seed), progress=not args.no_progress
    )
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
