# Copyright (c) mmfca contributors. All rights reserved.
"""The CPU specialisation of the FCA layer: the plain path's computation,
arranged for the CPU, where every fresh full-size tensor costs its page
faults (more than the pass that fills it, ``benchmarks/RESULTS.md``).

* the squeeze's products are taken a slice of channel groups at a time
  (:func:`chunked_products_sum`; the squeeze's ``'chunked'`` form, without
  autograd);
* training runs :class:`FusedCPUTraining`, whose backward writes the input
  gradient once.

CPU-only by construction (:func:`cpu_specialised`: float32/float64 NCHW
CPU tensors): on CUDA a fused backward cost more than it saved. The same
results as the plain path, to rounding (bit for bit in the tests: the
slices sum the same products; a slice with very few outputs may round its
sum differently); the layer tests run on both paths
(:func:`cpu_specialisations` forces either).
"""
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import forward_ad
from torch.nn.modules import module as nn_module

#: Whether the CPU specialisation runs (see :func:`cpu_specialisations`).
_cpu_specialisations = True


def cpu_specialised(x: torch.Tensor) -> bool:
    """Whether the CPU specialisation applies to ``x``: a float32 or
    float64 CPU tensor in NCHW layout, with the specialisations on (they
    are by default; :func:`cpu_specialisations` switches them). Every
    other input, and every CUDA input, takes the formula's plain path."""
    return (_cpu_specialisations and x.device.type == 'cpu'
            and (x.dtype == torch.float32 or x.dtype == torch.float64)
            and x.is_contiguous())


@contextmanager
def cpu_specialisations(enabled: bool):
    """Switch the CPU specialisation (the chunked squeeze and
    :class:`FusedCPUTraining`) on or off inside the context: the tests force
    each path in turn, the benchmarks compare them, and a double backward
    (gradient penalties) needs it off."""
    global _cpu_specialisations
    previous, _cpu_specialisations = _cpu_specialisations, bool(enabled)
    try:
        yield
    finally:
        _cpu_specialisations = previous


#: Largest temporary (bytes) of :func:`chunked_products_sum`. The CPU
#: allocator (glibc) maps fresh pages for every block above its mmap
#: threshold (at most 32 MiB) and the kernel zeroes them on first touch:
#: a full-size temporary costs more than the pass that fills it.
CPU_TEMPORARY_BYTES = 16 << 20


def chunked_products_sum(a: torch.Tensor, b: torch.Tensor,
                         acc: torch.dtype) -> torch.Tensor:
    """``(a * b).sum((3, 4), dtype=acc)`` for 5D ``a`` and ``b`` that
    broadcast and have the same size along dim 1, a slice of dim 1 at a
    time, so that each product is at most :data:`CPU_TEMPORARY_BYTES` and
    reuses the allocator's memory. The same products and sums as one call
    (equal to rounding: torch may split a reduction with few outputs
    differently), for the CPU (the caller turns autograd off)."""
    size = max(a.numel(), b.numel()) * a.element_size()
    slices = -(-size // CPU_TEMPORARY_BYTES)
    if slices <= 1:
        return (a * b).sum((3, 4), dtype=acc)
    step = -(-a.shape[1] // slices)
    return torch.cat([(a[:, i:i + step] * b[:, i:i + step]).sum(
        (3, 4), dtype=acc) for i in range(0, a.shape[1], step)], 1)


class FusedCPUTraining(torch.autograd.Function):
    """The FCA layer's forward and backward on the CPU, fused: the same
    squeeze, excitation and scale as
    :meth:`~mmfca.models.layers.MultiSpectralAttention.forward`, with the
    squeeze (taken by the layer in its ``'chunked'`` form and passed in)
    and the attention's gradient summed a slice of channels at a time
    (:func:`chunked_products_sum`), and a backward that writes the input
    gradient once: ``grad_out * att``, then the squeeze's part added in
    place. Autograd materialises each part and adds them.

    Measured on the CPU (``benchmarks/RESULTS.md``): the layer's forward
    and backward take 0.64-0.98x SE's time, against 1.04-1.20x on the plain
    path; on CUDA a fused backward cost 1.3-1.9x SE (more kernels), hence
    CPU-only (:func:`cpu_specialised`). It has no double backward: gradient
    penalties need the plain path (``cpu_specialisations(False)``), and its
    backward says so.
    """

    @staticmethod
    def forward(ctx, x, filters, y, w1, w2):
        """``x`` (N, C, H, W), its ``filters`` (G, 1, H, W) and squeeze ``y``
        (N, C) taken without autograd (``'chunked'`` form), the FCs'
        weights ``w1`` and ``w2``."""
        hidden = F.relu(F.linear(y, w1))
        att = torch.sigmoid(F.linear(hidden, w2))
        ctx.save_for_backward(x, filters, w1, w2, y, hidden, att)
        return x * att.view(*att.shape, 1, 1)

    @staticmethod
    def backward(ctx, grad_out):
        if torch.is_grad_enabled():  # create_graph=True
            raise RuntimeError(
                'The FCA layer\'s fused CPU training function has no double '
                'backward (create_graph=True); run the forward inside '
                'mmfca.models.layers.cpu_specialisations(False) to take the '
                'plain path, which has one.')
        x, filters, w1, w2, y, hidden, att = ctx.saved_tensors
        n, c, h, w = x.shape
        groups = filters.shape[0]
        grad_out = grad_out.contiguous()
        # d out / d att: per channel, sum_ij grad_out * x
        grad_att = chunked_products_sum(grad_out.view(n, c, 1, h, w),
                                        x.view(n, c, 1, h, w),
                                        y.dtype).view(n, c)
        grad_z = torch.ops.aten.sigmoid_backward(grad_att, att)
        grad_hidden = torch.ops.aten.threshold_backward(
            grad_z @ w2, hidden, 0)
        grad_w2 = grad_z.t() @ hidden if ctx.needs_input_grad[4] else None
        grad_w1 = grad_hidden.t() @ y if ctx.needs_input_grad[3] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_y = grad_hidden @ w1
            grad_x = grad_out * att.view(n, c, 1, 1)
            grad_x.view(n, groups, c // groups, h * w).addcmul_(
                grad_y.view(n, groups, c // groups, 1),
                filters.view(1, groups, 1, h * w))
        return grad_x, None, None, grad_w1, grad_w2


def function_transforms_active() -> bool:
    """Whether ``torch.func`` transforms (vmap, grad, jvp, jacrev) or
    forward-mode AD are at work: :class:`FusedCPUTraining` has neither
    their ``setup_context`` nor a ``jvp``, so the plain path serves them."""
    return (torch._C._are_functorch_transforms_active()
            or forward_ad._current_level >= 0)


def hooked(*modules: nn.Module) -> bool:
    """Whether any forward or backward hook would see ``modules`` (the
    layer then takes the plain path, where its submodules are called)."""
    if (nn_module._global_forward_hooks
            or nn_module._global_forward_pre_hooks
            or nn_module._global_backward_hooks
            or getattr(nn_module, '_global_backward_pre_hooks', None)):
        return True
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
               or getattr(m, '_backward_pre_hooks', None) for m in modules)
