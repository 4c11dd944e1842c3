"""A session-wide Dask LocalCluster for tests (2 worker processes, 1 thread each), closed at the
end of the session. Import the fixture into a conftest: ``from dask_cluster import dask_cluster``.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator

import pytest


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """Yields a ``distributed.Client`` on a 2-worker LocalCluster (``sor.scale.dask_client``)."""
    from sor.scale import dask_client

    with warnings.catch_warnings():
        # distributed warns when a closing cluster still has in-flight comms; not ours to fix
        warnings.filterwarnings("ignore", category=ResourceWarning, module="distributed")
        with dask_client(workers=2, threads_per_worker=1) as client:
            yield client
