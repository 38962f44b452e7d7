-- Plain PostgreSQL has kept the month rollup as a table since 0011; the TimescaleDB variant of
-- this migration brings its path to the same.
SELECT 1;
