"""A local GA4 Data API emulator that the official client talks to over loopback gRPC.

A served property is a ``dataset.PropertyData``: generated (``generated.generate_property``) or
replayed from BigQuery export files (``export_replay.load_export``). ``server.EmulatorServer``
serves any number of them; ``engine`` computes reports with DuckDB from the SQL in
``report_sql``, after ``query`` and ``filters`` have checked the request the way GA does.
"""
