#!/bin/sh
# Runs once, when the postgres volume is first initialised: the workers' login.
# It may read and write what the workers write (events, state, alerts, tasks,
# outcomes, changes) in the tables the churnwatch role creates later (the
# migrate job); the grants job then takes away its writes on the model
# registry, so that a worker can never point the fleet at another model.
set -eu
password="$(cat "$WORKER_DB_PASSWORD_FILE")"
psql -v ON_ERROR_STOP=1 -v pw="$password" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE churnwatch_worker LOGIN PASSWORD :'pw';
GRANT CONNECT ON DATABASE churnwatch TO churnwatch_worker;
GRANT USAGE ON SCHEMA public TO churnwatch_worker;
ALTER DEFAULT PRIVILEGES FOR ROLE churnwatch IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO churnwatch_worker;
ALTER DEFAULT PRIVILEGES FOR ROLE churnwatch IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO churnwatch_worker;
SQL
