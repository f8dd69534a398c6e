"""Session fixtures for the real servers the tests start (tests/postgres.py)."""
import pytest

from tests import postgres as pg


@pytest.fixture(scope="session")
def postgres():
    with pg.cluster() as found:
        yield found
