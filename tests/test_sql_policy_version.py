"""The policy version each server process polls (before denials, at each listing): read on a connection the
thread keeps, it must still see every change committed through any other connection at once."""

from __future__ import annotations

import pytest

from icemesh.backends.sql import open_sql
from icemesh.backends.sql.schema import bump_policy_version


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else f"sqlite:///{tmp_path}/c.db"
    opened = open_sql(url)
    yield opened
    opened.close()


def test_the_kept_connection_sees_each_committed_bump(backend):
    policy, db = backend.policy, backend.products.db
    first = policy.policy_version()
    for n in range(1, 4):
        with db.write() as conn, conn.begin():  # another connection, as another process would
            bump_policy_version(conn)
        assert policy.policy_version() == first + n
