#!/usr/bin/env bash
# Stops the nginx harness started by start.sh: the proxy gracefully (SIGQUIT: buffered events are flushed),
# then the backends. Usage: tests/lua/nginx/stop.sh PREFIX
set -u
PREFIX=${1:?usage: stop.sh PREFIX}
NGINX=${NGINX:-/usr/sbin/nginx}

# True while PID is an nginx process. A pid file left by an nginx that died is stale, and PIDs are
# recycled quickly (pid_max can be 32768): never signal a process that is not nginx.
is_nginx() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = nginx ]; }

stop_one() { # prefix
  local pidfile="$1/logs/nginx.pid" pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  is_nginx "$pid" || return 0
  kill -QUIT "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 200); do
    is_nginx "$pid" || return 0
    sleep 0.05
  done
  echo "nginx $pid did not quit in 10 s, killing it" >&2
  is_nginx "$pid" && kill -KILL "$pid" 2>/dev/null
}

stop_one "$PREFIX"
stop_one "$PREFIX/backends"
