"""The paper's pre-training tasks (Section 5): random labels, rotation, blur, blur + rotation.

Each produces the rewind point by training from W_0 on a changed task (see bench.pretraining for
the protocol). On images they are the paper's tasks. On 1D signals (MNIST-1D) they are the closest
analogues, documented in docs/early-phase.md:

* blur: average over windows of ``factor`` samples and interpolate back linearly (the 1D case of
  the 2D downsample-upsample). On augmented data (CIFAR) it is applied to each batch after crop
  and flip, as OpenLTH does; on MNIST-1D (no augmentation) the whole set is blurred once, which
  gives the same numbers;
* rotation: a 1D signal has no 90-degree rotation, so the four classes are the four rigid
  symmetries of the signal's plot, {identity, reversal, reversal + negation, negation}; like the
  four rotations of a square image they form a group of four, and reversal + negation is exactly
  the plot turned by 180 degrees. Circular shifts were not used because MNIST-1D already shifts
  every example at random, so a shift would be unpredictable from the signal.
"""

from __future__ import annotations

from bench import hookimpl
from bench.perturbation import Param
from bench.pretraining import Task, blur, check_blur, rotate, rotation_group

_FACTOR = Param("factor", int, 4, "downsampling factor of the blur (1 = no blur)")
_GROUP = Param("group", str, "auto",
               "auto (rot90 for images, flips for 1D signals), rot90 (images) or flips (1D signals)")


def _rotation_batch(group: str, factor: int = 1):
    def batch(x, y, gen):
        import torch

        labels = torch.randint(4, (x.shape[0],), generator=gen)  # one transform per example, fresh each step
        return rotate(blur(x, factor), labels, group), labels.to(y.device)
    return batch


def _blur_batch(factor: int):
    def batch(x, y, gen):
        return blur(x, factor), y
    return batch


class RandomLabels:
    name = "random-labels"
    description = "Supervised training on one fixed random label per example (drawn once, kept every epoch)."
    params = ()

    def prepare(self, ctx):
        import torch

        n = ctx.data.y_train.shape[0]
        labels = torch.randint(ctx.num_classes, (n,), generator=ctx.generator)
        return Task(y_train=labels.to(ctx.data.y_train.device))


class Rotation:
    name = "rotation"
    description = "Self-supervised: predict which of 4 rotations (1D: flips) was applied, with its own 4-way head."
    params = (_GROUP,)

    def prepare(self, ctx):
        group = rotation_group(ctx.data.x_train, ctx.params["group"])
        return Task(outputs=4, batch=_rotation_batch(group))


class Blur:
    name = "blur"
    description = "Supervised training on inputs downsampled by a factor and upsampled back."
    params = (_FACTOR,)

    def prepare(self, ctx):
        factor = ctx.params["factor"]
        check_blur(ctx.data.x_train, factor)
        if ctx.data.augment:  # after crop and flip, as OpenLTH (the padding is blurred in too)
            return Task(batch=_blur_batch(factor))
        # no augmentation: blurring the whole set once is the same numbers, and cheaper
        return Task(x_train=blur(ctx.data.x_train, factor))


class BlurRotation:
    name = "blur-rotation"
    description = "Rotation prediction (1D: flips) on blurred inputs, with its own 4-way head."
    params = (_FACTOR, _GROUP)

    def prepare(self, ctx):
        factor = ctx.params["factor"]
        check_blur(ctx.data.x_train, factor)
        group = rotation_group(ctx.data.x_train, ctx.params["group"])
        if ctx.data.augment:  # blur after crop and flip (as OpenLTH), then rotate
            return Task(outputs=4, batch=_rotation_batch(group, factor))
        return Task(outputs=4, x_train=blur(ctx.data.x_train, factor), batch=_rotation_batch(group))


PRETRAININGS = [RandomLabels(), Rotation(), Blur(), BlurRotation()]


@hookimpl
def register_pretraining(register):
    for pretraining in PRETRAININGS:
        register(pretraining)
