-- SchemaVersionIT: a migration numbered below the newest one shipped, arriving after it was applied.
CREATE TABLE late_arrival_probe (id integer PRIMARY KEY);
