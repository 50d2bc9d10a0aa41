"""The comparator: reads runs back from the collector, compares them, detects regressions, grades.

- ``targets``: the seed's requirement mapping (4.1-5.2) and every compared metric
- ``intervals``: a run cut into equal time intervals (counts + HDR histograms), the noise samples
- ``regression``: noise-aware verdicts (bootstrap interval over intervals + minimum effect)
- ``comparator``: baseline vs current rows, target achievement, checks, the comparison document
- ``history``: run listing, results stored with their runs, runs and result files as sides
- ``job``: ``--test-type baseline`` / ``perfsuite compare``: picking the sides; chart series
- ``synthetic``: runs synthesized through the real collector writer (tests, benchmarks)

baseline/ reads the collector, never the load code.
"""
