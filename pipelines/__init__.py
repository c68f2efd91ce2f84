"""ga-ltv's Dagster side: assets, partitions, schedules, checks, resources and the CLI."""

import os

import pyarrow as pa

# Arrow's default allocator (mimalloc) keeps freed pages for reuse. A backfill allocates a burst
# the size of a page each month; the system allocator hands those back, which kept a 36-month
# backfill's peak about 50 MB lower (benchmarks/bench_backfill.py). An explicit choice wins.
if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
    pa.set_memory_pool(pa.system_memory_pool())
