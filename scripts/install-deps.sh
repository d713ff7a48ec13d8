#!/usr/bin/env bash
# Installs the Debian 12 packages aforo-sidecar needs, only those missing (idempotent, non-interactive).
#   scripts/install-deps.sh          build + test dependencies (what scripts/test.sh needs)
#   scripts/install-deps.sh --build  only what building the daemon needs (what scripts/dev-run.sh needs)
#   scripts/install-deps.sh --bench  also the load tools used by bench/
#   scripts/install-deps.sh --fuzz   build dependencies + clang and libFuzzer (scripts/fuzz.sh); --test includes them
# Never installs the plain `luajit` package: it would remove nginx's Lua module (luajit2 is used instead).
set -euo pipefail

build_pkgs=(cmake g++ ninja-build pkg-config libboost1.81-dev libboost-url1.81-dev libhiredis-dev liblz4-dev
  rapidjson-dev libyaml-cpp-dev libssl-dev catch2 curl ca-certificates)
test_pkgs=(redis-server nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache luajit2 lua5.1
  lua-cjson lua-yaml lua-busted lua-check shellcheck clang-tidy clang-format lz4 openssl procps jq
  prometheus systemd python3-yaml)  # ops checks: promtool check metrics, systemd-analyze verify, manifests
bench_pkgs=(wrk hyperfine)
fuzz_pkgs=(clang libclang-rt-14-dev)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --build) ;;
  --bench) want+=("${test_pkgs[@]}" "${fuzz_pkgs[@]}" "${bench_pkgs[@]}") ;;
  --fuzz) want+=("${fuzz_pkgs[@]}") ;;
  ""|--test) want+=("${test_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
  *) echo "usage: $0 [--build|--test|--fuzz|--bench]" >&2; exit 64 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# Keep package scripts from starting services (nginx on port 80, redis on 6379): tests start their own.
policy_added=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
cleanup() { if [ "$policy_added" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
