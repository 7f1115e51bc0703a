#!/bin/sh
# Writes the Compose stack's secrets (random passwords) next to this script,
# keeping any that already exist. They are git-ignored.
set -eu
cd "$(dirname "$0")"
secret() {
    [ -s "$1" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1"
}
secret postgres_password.txt
secret grafana_db_password.txt
secret worker_db_password.txt
secret grafana_admin_password.txt
secret churnwatch_web_token.txt
[ -s churnwatch_db_url.txt ] || printf 'postgresql+psycopg://churnwatch:%s@postgres:5432/churnwatch' \
    "$(cat postgres_password.txt)" > churnwatch_db_url.txt
[ -s churnwatch_worker_db_url.txt ] ||
    printf 'postgresql+psycopg://churnwatch_worker:%s@postgres:5432/churnwatch' \
    "$(cat worker_db_password.txt)" > churnwatch_worker_db_url.txt
chmod 600 ./*.txt
echo "secrets in $(pwd)"
