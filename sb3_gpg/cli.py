"""
``sb3-gpg``: the RL Zoo's command line with GPG among its algorithms.

``sb3-gpg COMMAND [ZOO FLAGS...]`` (or ``python -m sb3_gpg COMMAND ...``) runs the Zoo's own script for
COMMAND with the Zoo's own flags, after registering GPG (:func:`sb3_gpg.zoo.register`)::

    sb3-gpg train --algo gpg --env CartPole-v1 -f logs --seed 0
    sb3-gpg enjoy --algo gpg --env CartPole-v1 -f logs --no-render -n 5000 --deterministic
    sb3-gpg train --algo ppo --env CartPole-v1 -f logs      # every Zoo algorithm works too

``train`` runs with :class:`sb3_gpg.zoo.GPGExperimentManager`, so ``--algo gpg`` reads the packaged
``gpg.yml`` unless ``--conf-file`` names another config, and a bad entry stops before training.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import importlib
import importlib.util
import runpy
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from sb3_gpg.vec_env import VEC_ENV_BACKENDS

PROG = "sb3-gpg"

#: The commands, each the Zoo script it runs and what it does.
COMMANDS: dict[str, str] = {
    "train": "train an agent, or tune its hyperparameters with -optimize (rl_zoo3 train)",
    "enjoy": "run a trained agent and print its mean episode reward (rl_zoo3 enjoy)",
    "record_video": "record a video of a trained agent (python -m rl_zoo3.record_video)",
    "plot_train": "plot the training reward of runs in a logs folder (rl_zoo3 plot_train)",
    "all_plots": "plot and compare the evaluations of several algorithms/folders (rl_zoo3 all_plots)",
    "plot_from_file": "plot results saved by all_plots (rl_zoo3 plot_from_file)",
}
# Commands whose --env names a gymnasium env, checked before the Zoo starts.
_ENV_COMMANDS = ("train", "enjoy", "record_video")


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        f"usage: {PROG} COMMAND [ARGS...]",
        "",
        "The RL Zoo's command line (rl_zoo3), with Group Policy Gradient registered as --algo gpg.",
        f"Each command takes the Zoo's flags: {PROG} COMMAND -h lists them.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()),
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def _program_argv(command: str, args: Sequence[str]) -> Iterator[None]:
    # The Zoo's scripts parse sys.argv; their usage lines then read "sb3-gpg train ...".
    saved = sys.argv
    sys.argv = [f"{PROG} {command}", *args]
    try:
        yield
    finally:
        sys.argv = saved


def _check_env(args: Sequence[str]) -> None:
    """Check ``--env`` (after importing ``--gym-packages``) before the Zoo builds anything."""
    from sb3_gpg import zoo

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--env", default="CartPole-v1")  # the Zoo's default
    parser.add_argument("--gym-packages", nargs="+", default=[])
    known, _ = parser.parse_known_args(args)
    for module in known.gym_packages:
        importlib.import_module(module)
    zoo.check_env_id(str(known.env))


def _train() -> None:
    import rl_zoo3.train

    from sb3_gpg import zoo

    # The Zoo's parser knows --vec-env dummy|subproc only: a batched backend is taken out of the arguments
    # and handed to the experiment manager, which builds the envs with it.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--vec-env", default="dummy")
    known, _ = parser.parse_known_args(sys.argv[1:])
    backend = known.vec_env
    if backend not in ("dummy", "subproc"):
        if backend not in VEC_ENV_BACKENDS:
            raise zoo.ZooConfigError(f"Unknown --vec-env {backend!r}: valid backends are {', '.join(VEC_ENV_BACKENDS)}.")
        sys.argv = _without_option(sys.argv, "--vec-env")
    # The Zoo's train() builds its ExperimentManager by this module-level name; GPGExperimentManager only
    # changes what concerns --algo gpg (default config, checks, n_envs tuning) and the batched backends.
    manager = functools.partial(zoo.GPGExperimentManager, vec_env_backend=backend)
    with zoo.replaced(rl_zoo3.train, "ExperimentManager", manager):
        rl_zoo3.train.train()


def _without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` (or ``option=VALUE``)."""
    result, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(f"{option}="):
            result.append(arg)
    return result


def _import_enjoy() -> Callable[[], None]:
    try:
        from rl_zoo3.enjoy import enjoy
    except ModuleNotFoundError as error:
        # rl_zoo3.enjoy imports its Hugging Face Hub downloader, which imports `requests`, a package rl_zoo3
        # does not declare. The downloader only serves the Zoo's `rl-trained-agents` folder, so a local model
        # is enjoyed without it: put a downloader in its place that explains what is missing.
        if error.name != "requests":
            raise
        sys.modules["rl_zoo3.load_from_hub"] = _hub_downloader_without_requests()
        from rl_zoo3.enjoy import enjoy
    return enjoy


def _hub_downloader_without_requests() -> types.ModuleType:
    module = types.ModuleType("rl_zoo3.load_from_hub", "Stand-in for rl_zoo3.load_from_hub, which needs `requests`.")

    def download_from_hub(*args: object, **kwargs: object) -> None:
        raise ImportError("Downloading a pretrained agent from the Hugging Face Hub needs `requests`: pip install requests")

    module.download_from_hub = download_from_hub  # type: ignore[attr-defined]
    return module


def _enjoy() -> None:
    _import_enjoy()()


def _record_video() -> None:
    # The Zoo's record_video is a script (its code runs under `if __name__ == "__main__"`).
    runpy.run_module("rl_zoo3.record_video", run_name="__main__", alter_sys=False)


def _plot(name: str) -> Callable[[], None]:
    def run() -> None:
        if name == "plot_from_file":
            from rl_zoo3.plots.plot_from_file import plot_from_file

            plot_from_file()
            return
        # plot_train and all_plots are loaded from their files: the package rl_zoo3.plots imports all its
        # scripts, plot_from_file's rliable (and its dependencies) included, which these two do not need.
        spec = importlib.util.find_spec("rl_zoo3")
        assert spec is not None and spec.submodule_search_locations
        path = Path(spec.submodule_search_locations[0]) / "plots" / f"{name}.py"
        module_spec = importlib.util.spec_from_file_location(f"_sb3_gpg_zoo_{name}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        getattr(module, name)()

    return run


_RUNNERS: dict[str, Callable[[], None]] = {
    "train": _train,
    "enjoy": _enjoy,
    "record_video": _record_video,
    "plot_train": _plot("plot_train"),
    "all_plots": _plot("all_plots"),
    "plot_from_file": _plot("plot_from_file"),
}


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code
    print(exit_.code, file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run ``sb3-gpg COMMAND [ARGS...]``.

    :param argv: The arguments after the program name (default: ``sys.argv[1:]``): a command of
        :data:`COMMANDS` and the Zoo's flags for it.
    :return: The exit status: 0 on success, 2 for a usage error or a configuration refused before training
        (its message is printed on stderr), else the Zoo script's status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from sb3_gpg import __version__

        print(f"{PROG} {__version__}")
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        matches = difflib.get_close_matches(command, list(COMMANDS), n=1)
        hint = f" Did you mean {matches[0]!r}?" if matches else ""
        print(f"{PROG}: error: unknown command {command!r}.{hint} Commands: {', '.join(COMMANDS)}.", file=sys.stderr)
        return 2

    from sb3_gpg import zoo

    try:
        if command in _ENV_COMMANDS and not {"-h", "--help"} & set(args):
            _check_env(args)
        zoo.register()
        with _program_argv(command, args):
            _RUNNERS[command]()
    except zoo.ZooConfigError as error:
        print(f"{PROG} {command}: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:
        return _exit_code(exit_)
    return 0


if __name__ == "__main__":
    sys.exit(main())
