import pytest

from testkit import run_script


@pytest.fixture
def script():
    return run_script
