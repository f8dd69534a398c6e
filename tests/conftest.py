"""Session fixtures for the real servers the tests start (tests/postgres.py, tests/ldap.py,
tests/apiserver.py, tests/s3.py)."""
import pytest

from tests import apiserver as kube
from tests import ldap as openldap
from tests import postgres as pg
from tests import s3 as seaweedfs


@pytest.fixture(scope="session")
def postgres():
    with pg.cluster() as found:
        yield found


@pytest.fixture(scope="session")
def directory():
    with openldap.directory() as found:
        yield found


@pytest.fixture(scope="session")
def apiserver():
    with kube.running() as api:
        yield api


@pytest.fixture(scope="session")
def s3():
    with seaweedfs.server() as found:
        yield found
