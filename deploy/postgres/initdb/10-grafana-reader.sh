#!/bin/sh
# Runs once, when the postgres volume is first initialised: a read-only login
# for Grafana. Tables and views the churnwatch role creates later (the migrate
# job) are readable by it through the default privileges.
set -eu
password="$(cat "$GRAFANA_DB_PASSWORD_FILE")"
psql -v ON_ERROR_STOP=1 -v pw="$password" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE grafana LOGIN PASSWORD :'pw';
GRANT CONNECT ON DATABASE churnwatch TO grafana;
GRANT USAGE ON SCHEMA public TO grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE churnwatch IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
SQL
