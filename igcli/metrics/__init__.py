"""Evaluation metrics for attribution maps (Yang et al. 2023, §4.3-4.6, Miglani et al. 2020, §3.2,
Swain and Singhi 2024, §4.2). Each module has one family; :mod:`igcli.jobs.evaluate` runs them over saved shards."""
