"""Load tests for the performance table in DESIGN.md: seeding, Locust suites, wrk peaks, the report.

``python -m loadtests.run`` (``make loadtest``) drives everything; ``--smoke`` proves the suites work in
seconds. Nothing here is imported by the server: it only speaks the public HTTP API, to 127.0.0.1.
"""
