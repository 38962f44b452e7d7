"""Local server processes (Mosquitto, PostgreSQL) for the demo, tests and benchmarks."""
