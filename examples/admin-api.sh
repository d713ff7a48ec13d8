#!/usr/bin/env bash
# Enables aforo-metering through the Kong Admin API: globally, or scoped to one service or one route.
#
# Usage: examples/admin-api.sh global
#        examples/admin-api.sh service SERVICE_NAME_OR_ID
#        examples/admin-api.sh route ROUTE_NAME_OR_ID
# Environment: KONG_ADMIN_URL (default http://localhost:8001), SIDECAR_URL (default http://127.0.0.1:8750),
#              FALLBACK_ON_ERROR (default allow).
set -euo pipefail

ADMIN=${KONG_ADMIN_URL:-http://localhost:8001}
SIDECAR_URL=${SIDECAR_URL:-http://127.0.0.1:8750}
FALLBACK=${FALLBACK_ON_ERROR:-allow}

case "${1:-}" in
  global)  target="$ADMIN/plugins" ;;
  service) target="$ADMIN/services/${2:?service name or id}/plugins" ;;
  route)   target="$ADMIN/routes/${2:?route name or id}/plugins" ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac

curl -sS --fail-with-body -X POST "$target" \
  --data "name=aforo-metering" \
  --data "config.sidecar_url=$SIDECAR_URL" \
  --data "config.tenant_header=X-Tenant-Id" \
  --data "config.discovery_enabled=true" \
  --data "config.fallback_on_error=$FALLBACK"
echo

# No restart is needed for Admin API changes; after installing the plugin files or changing
# KONG_PLUGINS, reload Kong: `kong reload` (buffered events are flushed by the exiting workers).
