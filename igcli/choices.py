"""How stored maps may be shaped and typed (``--reduce``, ``--dtype``): one torch- and h5py-free list that the
CLI's choices, the job checks and the shard validator all read."""

REDUCTIONS = ("none", "sum", "abs-sum")
STORAGE_DTYPES = ("float32", "float16")
