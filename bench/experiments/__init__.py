"""The experiments, without the command line: each resolves a request with :func:`setup.prepare`, runs
the cached stages of ``bench.stages`` and returns what it measured.

perturb        ``bench run``: perturbations of the rewound weights, one result file per seed
pretrain       ``bench pretrain``: the rewind point produced by training on a changed task
rewind_curve   ``bench rewind-curve``: ticket accuracy against the rewind iteration k
trace          ``bench trace``: what changes in the network during dense training
"""
