-- The admin API sets a key's own response cache setting (issue 19, ADR 0074): PATCH
-- /admin/users/{u}/keys/{k} with response_cache off | on | any | null (null = the plan decides).
-- The column and its CHECK exist since V19; the edge's role may now update it, and no other new column.
GRANT UPDATE (response_cache) ON api_key TO tokenmeter_edge;
