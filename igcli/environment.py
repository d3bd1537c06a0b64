"""The environment variables igcli reads: one table, for the man page, the README and a test.

``tests/test_cli_docs.py`` scans igcli's source for reads of the environment (``os.environ``, ``getenv``, and
the ``env`` mapping of :func:`igcli.distributed.resolve_part`) and fails when this table and the code disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    read_in: str  # the igcli module that reads it, or the library that reads it on igcli's behalf


ENVIRONMENT: tuple[Variable, ...] = (
    Variable("SLURM_ARRAY_TASK_ID", "With SLURM_ARRAY_TASK_COUNT and without --shard: this job array task takes "
             "part SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT parts of the inputs (the "
             "array must be contiguous, e.g. --array=0-N).", "igcli/distributed.py"),
    Variable("SLURM_ARRAY_TASK_COUNT", "The number of parts the inputs are split into across a SLURM job array.",
             "igcli/distributed.py"),
    Variable("SLURM_ARRAY_TASK_MIN", "The first task id of the SLURM job array (default 0), subtracted from "
             "SLURM_ARRAY_TASK_ID.", "igcli/distributed.py"),
    Variable("RANK", "Under torchrun: this process's rank; each rank takes its own sub-part of the job's part of "
             "the inputs (default 0).", "igcli/distributed.py"),
    Variable("WORLD_SIZE", "Under torchrun: the number of ranks (default 1).", "igcli/distributed.py"),
    Variable("LOCAL_RANK", "Under torchrun: the rank on this node; with GPUs the rank runs on cuda:LOCAL_RANK "
             "(default 0).", "igcli/distributed.py"),
    Variable("LOCAL_WORLD_SIZE", "Under torchrun: the ranks on this node, which share its cores: the default "
             "--workers is half the cores divided by it (default 1).", "igcli/data.py"),
    Variable("IGCLI_CACHE", "Folder of the schedules igcli calibrate writes and --schedule auto reads (default "
             "~/.cache/igcli/schedules).", "igcli/schedules.py"),
    Variable("_IGCLI_COMPLETE", "Set by the completion scripts (igcli completions SHELL) when they ask igcli for "
             "completions: igcli then prints them instead of running a command.", "igcli/cli/app.py"),
    Variable("TORCH_HOME", "torch's folder: torchvision weights are downloaded to, and found offline in, "
             "$TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints).", "torch.hub"),
)
