"""The job system: every long computation of the dashboard and the CLI runs as a job.

``system``: the queue (``JobSpec``, ``JobSystem``, ``JobHandle``): slots, a fair line, progress, Stop.
``kinds``: the kinds of job and how each runs. ``context``: what a job may use where it runs.
``local``: worker processes on this machine (and threads). ``worker``: the worker process.
``ray``: a Ray cluster.
"""
