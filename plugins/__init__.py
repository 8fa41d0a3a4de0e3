"""The paper's perturbations, shipped as ordinary plugins of the ``bench`` entry-point group.

Installed under the import name ``earlyphase_bench_plugins`` so it cannot clash
with another distribution's ``plugins`` package.
"""
