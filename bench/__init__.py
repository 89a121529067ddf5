"""SealTrail's benchmarks: each figure is measured against a naive baseline in the same run, printed as a ratio."""
