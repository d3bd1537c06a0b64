"""Count, on a CPU-only machine, the operations that would make the host wait for a CUDA device.

On CPU every tensor lives in host memory, so nothing ever waits; but the *operations* that force a
host-device synchronisation on CUDA are the same ones, and they can be seen from Python:

- ``scalar``: ``aten._local_scalar_dense`` (and ``aten.is_nonzero``), behind ``.item()``, ``bool()``,
  ``int()``, ``float()`` and ``operator.index`` of a tensor (the host needs the value).
- ``shape``: ops whose output size depends on the data, so the host must learn it before it can allocate:
  ``nonzero``, ``masked_select``, the ``unique`` family, ``repeat_interleave`` without ``output_size``,
  ``bincount``, ``equal``, and ``index``/``index_put_`` with a boolean index (CUDA turns the
  mask into indices through ``nonzero``).
- ``to_host``: ``.tolist()``, ``.numpy()``, ``.cpu()``, ``np.asarray(tensor)`` of a device tensor (device to
  host copies wait for the copy).
- ``to_device``: host data copied to the device without ``non_blocking=True``:
  ``torch.as_tensor``/``torch.tensor`` of a list, array or host tensor with ``device=``, ``.to(device)`` of a
  host tensor, and a host tensor (not a 0-dim one) used in an op together with device tensors (an index
  tensor, say). PyTorch issues these through ``memcpy_and_sync``, i.e. ``cudaStreamSynchronize``.

Which tensors are host tensors is emulated: a tensor made by ``torch.from_numpy``, or by a factory
(``torch.arange``, ``torch.zeros``, ``torch.as_tensor`` of non-tensor data, ...) called without ``device=``,
is a host tensor, and so is every result of an op whose tensor inputs are all host tensors; every other tensor
(the caller's images, the model's parameters, whatever was made with ``device=`` or moved with ``.to(device)``)
is a device tensor. Ops on host tensors are never counted.

Not counted (cannot be seen, or cannot be told apart, on CPU): ``.to(device)`` of a device tensor (on CUDA a
device-to-host copy when ``device`` is the CPU, a no-op otherwise: e.g. the result copies at the end of
``igcli.attribute``), copies made with ``non_blocking=True`` (asynchronous from pinned memory), syncs inside
the model's own code paths that are not ATen ops, allocator and cuDNN/cuBLAS internals, and kernels that
synchronise internally on CUDA only.
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import weakref
from typing import Any, Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

_aten = torch.ops.aten

# Ops that need a value or a data-dependent size on the host (see the module docstring).
_SCALAR_OPS = {_aten._local_scalar_dense.default, _aten.is_nonzero.default}  # bool() of a tensor may go either way
_SHAPE_PACKETS = {
    _aten.nonzero,
    _aten.masked_select,
    _aten._unique,
    _aten._unique2,
    _aten.unique_dim,
    _aten.unique_consecutive,
    _aten.unique_dim_consecutive,
    _aten.bincount,
    _aten.equal,
}
_BOOL_INDEXED = {_aten.index, _aten.index_put, _aten.index_put_, _aten._index_put_impl_}

_TO_HOST = {torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu, torch.Tensor.__array__}
_MOVES = {torch.Tensor.to, torch.Tensor.cuda}
_FROM_DATA = {torch.as_tensor, torch.tensor, torch.asarray}

_PACKAGE = os.sep + "igcli" + os.sep


def _call_site() -> str:
    """``igcli/<file>.py:<line>`` of the innermost igcli frame, else ``<outside igcli>``."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if _PACKAGE in filename:
            return "igcli/" + filename.rsplit(_PACKAGE, 1)[1].replace(os.sep, "/") + f":{frame.f_lineno}"
        frame = frame.f_back
    return "<outside igcli>"


def _tensors(args: Any, kwargs: Any) -> list[torch.Tensor]:
    leaves, _ = tree_flatten((args, kwargs or {}))
    return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]


def _moves_device(args: tuple, kwargs: dict) -> bool:
    """Whether a ``Tensor.to(...)``/``.cuda(...)`` call names a device (not just a dtype)."""
    if kwargs.get("device") is not None:
        return True
    for arg in args[1:]:
        if isinstance(arg, (torch.device, str, int)) and not isinstance(arg, bool):
            return True
        if isinstance(arg, torch.Tensor):  # .to(other): other's device and dtype
            return True
    return False


class SyncCounter:
    """Context manager that records every would-be synchronisation as (kind, igcli call site).

    ``counter.total``, ``counter.by_kind()`` and ``counter.by_site()`` read the record.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._host: dict[int, weakref.ref] = {}
        self._stack = contextlib.ExitStack()

    # -- host/device bookkeeping -----------------------------------------------------------------------

    def _mark_host(self, value: Any) -> None:
        for tensor in _tensors(value, None):
            self._host[id(tensor)] = weakref.ref(tensor)

    def _mark_device(self, value: Any) -> None:
        # On CPU ``.to(device)`` may hand back the very same tensor object: it is a device tensor from now on.
        for tensor in _tensors(value, None):
            self._host.pop(id(tensor), None)

    def is_host(self, tensor: torch.Tensor) -> bool:
        ref = self._host.get(id(tensor))
        return ref is not None and ref() is tensor

    def _record(self, kind: str) -> None:
        self.events.append((kind, _call_site()))

    # -- reading ---------------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.events)

    def by_kind(self) -> dict[str, int]:
        return dict(collections.Counter(kind for kind, _ in self.events))

    def by_site(self) -> dict[str, int]:
        return dict(collections.Counter(f"{site} ({kind})" for kind, site in self.events).most_common())

    # -- context ---------------------------------------------------------------------------------------

    def __enter__(self) -> "SyncCounter":
        original = torch.from_numpy

        def from_numpy(array):  # not a torch function: the mode never sees it
            tensor = original(array)
            self._mark_host(tensor)
            return tensor

        torch.from_numpy = from_numpy
        self._stack.callback(setattr, torch, "from_numpy", original)
        self._stack.enter_context(_FunctionLevel(self))
        self._stack.enter_context(_DispatchLevel(self))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()


class _FunctionLevel(TorchFunctionMode):
    """Tracks host tensors through Python-level calls; counts copies between host and device."""

    def __init__(self, counter: SyncCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if isinstance(func, torch._ops.OpOverload):  # an ATen op called from the dispatch level
            return result
        counter = self.counter
        inputs = _tensors(args, kwargs)
        non_blocking = bool(kwargs.get("non_blocking", False))
        if func in _TO_HOST:
            if not counter.is_host(args[0]):
                counter._record("to_host")
            counter._mark_host(result)
        elif func in _MOVES:
            if _moves_device(args, kwargs):
                if counter.is_host(args[0]) and not non_blocking:
                    counter._record("to_device")
                counter._mark_device(result)
            elif counter.is_host(args[0]):
                counter._mark_host(result)
        elif func in _FROM_DATA:
            data = args[0] if args else kwargs.get("data")
            host_data = not isinstance(data, torch.Tensor) or counter.is_host(data)
            if kwargs.get("device") is None:
                if host_data:
                    counter._mark_host(result)
            else:
                if host_data:
                    counter._record("to_device")
                counter._mark_device(result)
        elif kwargs.get("device") is None:
            host = [counter.is_host(t) for t in inputs]
            if all(host):  # also a factory with no tensor input and no device: it makes host tensors
                counter._mark_host(result)
            elif any(h and t.dim() > 0 for h, t in zip(host, inputs)):
                counter._record("to_device")  # a host tensor meets device tensors: an implicit copy
        return result


class _DispatchLevel(TorchDispatchMode):
    """Counts the ATen ops that need a value or a data-dependent size on the host."""

    def __init__(self, counter: SyncCounter) -> None:
        super().__init__()
        self.counter = counter
        self.reading = False  # inside a scalar read: is_nonzero may read through _local_scalar_dense

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        counter = self.counter
        inputs = _tensors(args, kwargs)
        on_device = any(not counter.is_host(t) for t in inputs)
        if func in _SCALAR_OPS:
            if on_device and not self.reading:
                counter._record("scalar")
            self.reading = True
            try:
                return func(*args, **kwargs)
            finally:
                self.reading = False
        if on_device:
            if func.overloadpacket in _SHAPE_PACKETS:
                counter._record("shape")
            elif func.overloadpacket is _aten.repeat_interleave and kwargs.get("output_size") is None:
                counter._record("shape")
            elif func.overloadpacket in _BOOL_INDEXED and _has_bool_index(args, kwargs):
                counter._record("shape")
        return func(*args, **kwargs)


def _has_bool_index(args: tuple, kwargs: dict) -> bool:
    indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ())


@contextlib.contextmanager
def count_syncs() -> Iterator[SyncCounter]:
    """``with count_syncs() as counter: ...``; then read ``counter.total`` or ``counter.by_site()``."""
    with SyncCounter() as counter:
        yield counter
