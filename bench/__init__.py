"""Benchmarks of publishing-operator: they print numbers, they assert nothing, CI does not run them.

`python -m bench` runs every benchmark with its defaults; each one also runs alone
(`python -m bench.one_build`, `python -m bench.throughput`). The stack is the integration tests'
(tests/fixtures): the real operator as a child process against the emulated Kubernetes API and the
Expo simulator, with Expo-realistic durations and the operator's default poll intervals scaled by
the same factor.
"""
