"""Evaluation metrics for attribution maps (idgi.txt §4.3-4.6, split-ig-saturation.txt §3.2,
riemannopt.txt §4.2). Each module has one family; :mod:`igcli.evaluate` runs them over saved shards."""
