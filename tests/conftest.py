import logging

import pytest

from testkit import run_script


@pytest.fixture
def script():
    return run_script


@pytest.fixture(autouse=True)
def _synthhist_logger_restored():
    """Undo a test's cli.setup_logging (its own handlers, propagate off), so that caplog in later tests sees records
    whichever tests ran before in the same process (pytest-xdist workers run a different mix)."""
    logger = logging.getLogger("synthhist")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    yield
    for h in [h for h in logger.handlers if h not in handlers]:
        logger.removeHandler(h)
        h.close()
    logger.handlers[:] = handlers
    logger.propagate, logger.level = propagate, level
