#!/usr/bin/env bash
# dev-server.sh: build and start hp-fake-server on 127.0.0.1:8080 with a
# development secret, print a token for alice@home and the URLs to use.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh normal >/dev/null
secret=${HP_DEV_SECRET:-dev-secret-change-me}
bin=build/fake_server/hp-fake-server
token=$($bin token --sub alice --hh home --ttl 8h --jwt-secret "$secret")
cat <<MSG
hp-fake-server on http://127.0.0.1:8080  (secret: $secret, store: dev-server.db)
token (alice@home, 8h):
  $token
REST:      curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/api/v0.2/tasks?since=0
WebSocket: ws://127.0.0.1:8080/api/v0.2/tasks/stream?token=\$TOKEN
MSG
exec $bin --listen 127.0.0.1:8080 --db dev-server.db --jwt-secret "$secret" --admin
