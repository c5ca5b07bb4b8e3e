"""Shared plumbing for the top-level click scripts: error reporting and common option types."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from synthhist.errors import UserError


def run(command: click.Command) -> None:
    """Run a click command; user errors become one line on stderr and a non-zero exit, never a traceback."""
    from synthhist.gan.cpu_memory import keep_freed_memory

    keep_freed_memory()  # large CPU activations are reused instead of page-faulted in anew (see its docstring)
    try:
        rc = command.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except UserError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


def setup_logging(run_dir: str | Path | None = None, name: str = "log.txt") -> logging.Logger:
    """Log INFO to stderr and, when run_dir is given, append everything to run_dir/name."""
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
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(Path(run_dir) / name)
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    logger.propagate = False
    return logger
