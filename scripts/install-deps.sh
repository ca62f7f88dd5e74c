#!/usr/bin/env bash
# Installs the Debian packages kvd needs to build, test and benchmark.
# Idempotent: only what is missing is installed. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config
  # libraries
  libuv1-dev libtoml11-dev libspdlog-dev libfmt-dev libsystemd-dev libcli11-dev
  nlohmann-json3-dev libxxhash-dev prometheus-cpp-dev libssl-dev libcurl4-openssl-dev
  # tests
  doctest-dev python3 clang libclang-rt-14-dev util-linux procps
  # the power-cut file system (tests/lazyfs), metrics lint, Redis clients for RESP
  libfuse3-dev fuse3 prometheus python3-redis
  # the cluster (etcd decides who is primary) and its partition tests
  etcd-server etcd-client iproute2 iptables
  # service tests, packaging
  systemd dbus dpkg-dev file
  # benchmarks
  redis-server redis-tools gnuplot-nox valgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
