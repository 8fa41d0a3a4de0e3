"""The experiments, without the command line: each resolves a request with :func:`setup.prepare`, runs
the cached stages of ``bench.stages`` and returns what it measured (records, a Curve, a Trace); they never
draw or import ``bench.report``: the command line draws what they return.

perturb        ``bench run``: perturbations of the rewound weights, one result file per seed
pretrain       ``bench pretrain``: the rewind point produced by training on a changed task
rewind_curve   ``bench rewind-curve``: ticket accuracy against the rewind iteration k
trace          ``bench trace``: what changes in the network during dense training
verify         ``bench verify``: re-run stored results from scratch and compare
setup, records, parallel   run options and preparation; the result record; seed groups side by side
"""
