"""The comparator: reads runs back from the collector, compares them, detects regressions, grades.

- ``targets``: the seed's requirement mapping (4.1-5.2) and every compared metric
- ``gate``: the regression gate, a change judged against the variation between runs
- ``changepoints``: change points in a series of runs (E-divisive means); ``student``: Student's t
- ``regression``: what a verdict is, and the within-run bootstrap interval (information)
- ``comparison``: the comparison document (sides, rows, checks, grade, its JSON form)
- ``comparator``: baseline vs current rows, the seed's targets or the gate's verdicts, checks
- ``sides``: runs, groups and result files as sides; the baseline's history
- ``job``: ``--test-type baseline`` / ``perfsuite compare``: picking the sides; chart series
- ``groups``: a ``run --repeat N`` group's table; ``trend``: ``perfsuite runs trend``
- ``synthetic``: runs synthesized through the real collector writer (tests, benchmarks)

baseline/ reads the collector, never the load code.
"""
