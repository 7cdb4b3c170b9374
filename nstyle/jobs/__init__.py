"""Batch jobs (``nstyle batch``, ``nstyle.batch``): many runs from one plan, here or on a Dask cluster.

``plan`` reads the plan (TOML or CSV) into jobs, ``ledger`` records what finished,
``task`` is what a worker runs, ``runner`` submits the jobs and writes the results.
"""

from .ledger import JobResult
from .plan import Job, read_plan
from .runner import batch, default_workers

__all__ = ["Job", "JobResult", "batch", "default_workers", "read_plan"]
