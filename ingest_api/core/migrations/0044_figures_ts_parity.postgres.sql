-- Plain PostgreSQL already has what the TimescaleDB variant of this migration brings: every
-- change reaches the rollup tables at a refresh and only then (contacts included), whichever
-- way the rows were written (INSERT or COPY).
SELECT 1;
