"""Chaos: the real operator under SIGKILLs, SIGTERMs, Expo and Kubernetes API faults (see run.py)."""
