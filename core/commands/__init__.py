"""The sub-commands of ``python -m core``, one module per feature; each has ``register(subparsers)``.

Commands that run long work build a ``core.jobs.JobSpec`` and hand it to ``core.cli.run_job``, so the
command line computes exactly what the dashboard's job would (``--backend local|ray``).
"""
MODULES = ("train", "activations", "oip", "precursor", "clustering", "dream", "compare", "knockout", "attack", "invariance", "handwriting", "lime", "import_model", "replay")
