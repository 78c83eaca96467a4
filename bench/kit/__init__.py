"""The bench kit: what the scenario scripts in bench/ share.

- ``load``: the HTTP load generator (closed and open loop, pre-built request bytes);
- ``submissions``: what the benchmarks send, built with the simulator's generator;
- ``kafka_perf``: Kafka's own perf tools, the raw limit of what Kafka takes;
- ``copy_limit``: PostgreSQL's own bulk limit, a COPY of the rows enrich writes;
- ``stack``: services as processes, and what they cost (``procstat`` reads ``/proc``);
- ``pipeline``: the three services spawned together, each timed to ready;
- ``results``: the machine and versions a run reports, and ``RESULTS.md``;
- ``pyspy``, ``profile``: py-spy recording the services, its stacks folded into stages;
- ``statements``: which statements the PostgreSQL backends spent their time on;
- ``testkit``: the parts bench borrows from the test kit, imported in this one place.

Nothing is imported here: a load-generator process imports ``bench.kit.load`` alone.
"""
