-- Plain PostgreSQL: the rollups are ordinary tables, granted by 0030 already.
SELECT 1;
