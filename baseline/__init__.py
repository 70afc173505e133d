"""The optimisation-based baseline (Gatys et al. 2016) that the fast networks are compared with."""
from .gatys import BaselineResult, run_baseline

__all__ = ["BaselineResult", "run_baseline"]
