"""Report helpers shared by the suites: where results go, table cells with rliable IQM confidence intervals, learning
curves, markdown tables and the sections of ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import math
import os
import platform
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
INTRO = "# Benchmark results\n\nResults of the benchmark scripts in `benchmarks/`, one section per benchmark.\n"


def interval_estimate(scores: np.ndarray, seed: int = 0, reps: int = 2000) -> tuple[float, float, float]:
    """IQM of ``scores`` and its 95% percentile-bootstrap CI, with rliable. All eval episodes of all training seeds
    are pooled as one task's runs, as the paper pools them for mean ± std.

    ``rliable.library`` imports ``arch``, and no ``arch`` release works with both rliable 1.2 and pandas 3 (arch 7.2
    fails to import under pandas 3, arch 8 refuses rliable's ``random_state`` argument). Where it cannot be imported,
    the same bootstrap (rliable's stratified bootstrap reduces to resampling the runs when there is one task) is done
    here around ``rliable.metrics.aggregate_iqm``.
    """
    from rliable import metrics

    matrix = np.asarray(scores, dtype=float).reshape(-1, 1)
    try:
        from rliable import library as rly
    except (ImportError, TypeError):
        rly = None
    if rly is not None:
        # rliable's StratifiedBootstrap draws its resampling indices from numpy's global generator whatever
        # random_state says: seed that too (and restore it), or the same scores give a different CI on every call.
        global_state = np.random.get_state()
        np.random.seed(seed)
        try:
            with warnings.catch_warnings():  # arch's notice that rliable passes the old random_state argument
                warnings.simplefilter("ignore", FutureWarning)
                points, intervals = rly.get_interval_estimates(
                    {"x": matrix}, metrics.aggregate_iqm, reps=reps, random_state=np.random.RandomState(seed)
                )
        finally:
            np.random.set_state(global_state)
        low, high = np.ravel(intervals["x"])
        return float(np.ravel(points["x"])[0]), float(low), float(high)
    rng = np.random.default_rng(seed)
    resampled = [metrics.aggregate_iqm(matrix[rng.integers(0, len(matrix), len(matrix))]) for _ in range(reps)]
    low, high = np.percentile(resampled, [2.5, 97.5])
    return float(metrics.aggregate_iqm(matrix)), float(low), float(high)


def format_cell(scores: Sequence[float]) -> str:
    """``mean ± std (IQM [lo, hi])`` of pooled evaluation returns."""
    scores = np.asarray(scores, dtype=float)
    iqm, low, high = interval_estimate(scores)
    return f"{scores.mean():.1f} ± {scores.std():.1f} ({iqm:.1f} [{low:.1f}, {high:.1f}])"


@dataclass
class CellScores:
    """Evaluation returns of one table cell, pooled over its finished runs."""

    expected: int
    scores: list[float] = field(default_factory=list)
    runs: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.scores.extend(record["eval"]["returns"])
        self.runs += 1

    def text(self) -> str:
        if self.runs == 0:
            return f"pending (0/{self.expected} runs)"
        cell = format_cell(self.scores)
        return cell if self.runs >= self.expected else f"{cell}, pending ({self.runs}/{self.expected} runs)"


def filled_curve(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, return) per iteration; an iteration in which no episode ended repeats the last known return
    (NaN before the first)."""
    steps = np.asarray(record["curve"]["timesteps"], dtype=float)
    values = np.array([math.nan if v is None else v for v in record["curve"]["ep_return"]], dtype=float)
    for i in range(1, len(values)):
        if math.isnan(values[i]):
            values[i] = values[i - 1]
    return steps, values


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def machines(records: Iterable[dict[str, Any]]) -> str:
    """The machines the runs of a report ran on (their records say), or this one when none has finished: a report
    regenerated elsewhere still names where its numbers come from."""
    found = list(dict.fromkeys(record["machine"] for record in records if record.get("machine")))
    return "; ".join(found) if found else machine()


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def replace_section(path: Path, heading: str, body: str, intro: str = INTRO, after: str | None = None) -> None:
    """Replace the ``## heading`` section of a markdown file (up to the next ``## ``), keeping the others; a new
    section goes right after the ``## after`` section if there is one, else at the end. A missing file is created
    with ``intro``."""
    text = path.read_text() if path.exists() else intro.rstrip() + "\n"
    section = f"## {heading}\n\n{body.strip()}\n"
    parts = text.split("\n## ")  # parts[0] is the intro; every other part is "heading\n...", its "## " split off
    headings = [part.split("\n", 1)[0].strip() for part in parts[1:]]
    new_part = section[3:].rstrip("\n") + "\n"
    if heading in headings:
        parts[1 + headings.index(heading)] = new_part
    elif after in headings:
        parts.insert(2 + headings.index(after), new_part)
    else:
        parts.append(new_part)
    text = "\n## ".join(part if i == len(parts) - 1 else part.rstrip("\n") + "\n" for i, part in enumerate(parts))
    path.write_text(text)


def with_notes(body: str, folder: Path) -> str:
    """``body`` followed by ``folder/notes.md``, the hand-written reading of the numbers kept next to them, if any."""
    notes = folder / "notes.md"
    return body + "\n" + notes.read_text().strip() + "\n" if notes.exists() else body
