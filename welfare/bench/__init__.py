"""`welfare bench`: the performance suite, run side by side against real Mosquitto and PostgreSQL.

One module per benchmark (`ingest`, `edge`, `figures`, `face`); `results` holds the result rows,
the machine description and the writers of the JSON file and of the table in
docs/performance.md.
"""
