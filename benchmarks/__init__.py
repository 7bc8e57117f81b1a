"""Benchmarks of sb3-gpg, run from the repository root as ``python -m benchmarks.<suite> ...``.

Shared modules: :mod:`benchmarks.harness` (tasks, profiles, run specs, one run), :mod:`benchmarks.sweep` (result
files, locks and the resumable sweep runner), :mod:`benchmarks.cli` (the command line of every sweep suite) and
:mod:`benchmarks.report` (tables, confidence intervals, RESULTS.md sections). The suites import those, never each
other. Results and the commands that made them: ``benchmarks/RESULTS.md``.
"""
