from dask_cluster import dask_cluster  # noqa: F401  (session fixture shared with other dirs)
