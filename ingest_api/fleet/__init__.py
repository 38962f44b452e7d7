"""The fleet: heartbeats as a time series, online/offline with hysteresis, alerts, metrics."""
