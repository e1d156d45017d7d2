#!/bin/sh
# Container health for the one Dagster image, whichever role it plays (DAGSTER_ROLE).
set -eu

case "${DAGSTER_ROLE:-code-location}" in
  code-location)
    exec dagster api grpc-health-check -p 4000
    ;;
  webserver)
    exec python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/server_info', timeout=5)"
    ;;
  daemon)
    # Fails unless the daemon wrote a heartbeat to the instance database recently.
    exec dagster-daemon liveness-check
    ;;
  *)
    echo "healthcheck: unknown DAGSTER_ROLE '${DAGSTER_ROLE}'" >&2
    exit 1
    ;;
esac
