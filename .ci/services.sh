#!/usr/bin/env bash
# Sourced by .ci/run: install PostgreSQL and Chromium if missing, start a throwaway PostgreSQL
# on 127.0.0.1 only (as the postgres user, in a temp folder), and export GA_LTV_TEST_PG_DSN and
# GA_LTV_TEST_CHROMIUM for the publishing tests. The server stops when the calling shell exits.

ga_ltv_services() {
    export CI="${CI:-true}" # publishing tests fail instead of skipping when a service is missing
    local missing=()
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
    command -v chromium >/dev/null || missing+=(chromium)
    if ((${#missing[@]})); then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi

    local bin folder port password
    bin=$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -n 1)")
    folder=$(mktemp -d /tmp/ga-ltv-ci-pg.XXXXXX)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
    local old_umask
    old_umask=$(umask)
    umask 077
    printf '%s\n' "$password" >"$folder/pwfile"
    umask "$old_umask"
    local run=()
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$folder"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$folder/data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --pwfile="$folder/pwfile" >/dev/null
    "${run[@]}" "$bin/pg_ctl" -D "$folder/data" -l "$folder/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $folder -c fsync=off" start >/dev/null
    # shellcheck disable=SC2064 # expand now: the values are fixed for this shell
    trap "${run[*]} $bin/pg_ctl -D $folder/data -m immediate stop >/dev/null; rm -rf $folder" EXIT

    export GA_LTV_TEST_PG_DSN="host=127.0.0.1 port=$port dbname=postgres user=postgres password=$password"
    GA_LTV_TEST_CHROMIUM=$(command -v chromium)
    export GA_LTV_TEST_CHROMIUM
    echo "services: PostgreSQL on 127.0.0.1:$port ($folder), Chromium $GA_LTV_TEST_CHROMIUM" >&2
}

ga_ltv_services
