"""Shared plumbing for the top-level click scripts: error reporting, option spellings, logging, TensorFlow noise."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

import click

from synthhist.errors import UserError


def run(command: click.Command) -> None:
    """Run a click command; user and usage errors become one line on stderr and a non-zero exit, never a traceback.

    SIGTERM is handled like Ctrl-C, so atomic writes remove their temp files on the way out.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        rc = command.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as e:
        name = Path(sys.argv[0]).name
        click.echo(f"Error: {e.format_message()} (see {name} --help)", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        click.echo(f"Error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except UserError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _dashes(name: str) -> str:
    """--outcome_idx and --outcome-idx are the same option (click applies this to option names and choices)."""
    return name.replace("_", "-")


def command(**kwargs):
    """click.command whose options accept both spellings, underscore and dash (--outcome_idx, --outcome-idx)."""
    settings = {"token_normalize_func": _dashes, **kwargs.pop("context_settings", {})}
    return click.command(context_settings=settings, **kwargs)


def bool_option(*decls: str, help: str):
    """A boolean option that takes the original scripts' forms alike: --video, --video=True, --video True/False."""
    return click.option(*decls, type=click.BOOL, is_flag=False, flag_value=True, default=False, metavar="[BOOL]",
                        help=help)


def verbose_option(f):
    """--verbose: also show TensorFlow's start-up lines."""
    return click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages too.")(f)


def import_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow without its start-up lines on stderr (absl/oneDNN/cpu_feature_guard), unless verbose.

    verbose: --verbose, or SYNTHHIST_VERBOSE=1 in the environment.
    """
    if "tensorflow" in sys.modules:
        return
    if verbose or os.environ.get("SYNTHHIST_VERBOSE", "") not in ("", "0"):
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _native_stderr_silenced():  # absl writes its first lines before any log level applies
        import tensorflow  # noqa: F401
    with contextlib.suppress(ImportError):
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)


@contextlib.contextmanager
def _native_stderr_silenced():
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _LazyFileHandler(logging.FileHandler):
    """A log file (and its folder) created by the first record, so a run that fails early leaves nothing."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def setup_logging(run_dir: str | Path | None = None, name: str = "log.txt") -> logging.Logger:
    """Log INFO to stderr and, when run_dir is given, append everything to run_dir/name (created on first use)."""
    logger = logging.getLogger("synthhist")
    logger.setLevel(logging.INFO)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(stream)
    if run_dir is not None:
        fh = _LazyFileHandler(Path(run_dir).absolute() / name, delay=True)
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    logger.propagate = False
    return logger
