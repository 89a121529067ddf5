#!/bin/sh
# Install as /usr/local/bin/sealtrail (root:root, 0755): runs /opt/sealtrail's sealtrail as the `sealtrail` user
# with the services' settings, so admin commands see the same database, data directory, trust list and token.
# Variables already set on the command line win (e.g. SEALTRAIL_PKCS11_TOKEN_LABEL=truong-79000101 sealtrail hsm …).
# See docs/deployment.md.
ENV_FILE=${ENV_FILE:-/etc/sealtrail/sealtrail.env}
PROGRAM=${PROGRAM:-/opt/sealtrail/.venv/bin/sealtrail}
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    name=${line%%=*}
    case "$name" in *[!A-Za-z0-9_]* | '') echo "sealtrail: bad line in $ENV_FILE: $line" >&2; exit 2 ;; esac
    eval "[ -n \"\${$name+x}\" ]" || eval "export $line"
done < "$ENV_FILE"
if [ "$(id -u)" = 0 ] && [ "${RUN_AS:-sealtrail}" != root ]; then
    exec runuser -u "${RUN_AS:-sealtrail}" -- "$PROGRAM" "$@"
fi
exec "$PROGRAM" "$@"
