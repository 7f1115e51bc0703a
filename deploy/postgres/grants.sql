-- Run by the grants job after every migration, as the store's owner: the
-- workers read the model registry but never write it (`churnwatch train` runs
-- with the owner's login), and Grafana reads everything, tables created
-- before its default privileges included.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON models FROM churnwatch_worker;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana;
