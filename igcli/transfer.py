"""Host-to-device copies that never make the host wait for the device.

``torch.as_tensor(data, device="cuda")`` and a plain ``.to("cuda")`` of a host tensor copy through
``memcpy_and_sync``: the host waits until the device has finished all the work queued before it. A copy with
``non_blocking=True`` is queued instead (from pinned memory asynchronously; from pageable memory the driver
stages it at once without waiting for the queue), so per-batch tables and draws can be copied inside the
hot loops.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def to_device(data: Any, device: torch.device | str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``data`` (a host tensor, array or list) as a tensor on ``device``, queued, never waited for."""
    device = torch.device(device)
    tensor = torch.from_numpy(np.ascontiguousarray(data)) if isinstance(data, np.ndarray) else torch.as_tensor(data)
    if dtype is not None:
        tensor = tensor.to(dtype)
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)
