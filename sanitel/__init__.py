"""Sanitel, the application: the `sanitel` command, the demo and the local servers it starts.

The composition root: it joins `ingest`, `simulators`, `dashboards` and `devices`;
none of them imports it.
"""
