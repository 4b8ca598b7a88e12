#!/usr/bin/env bash
# Make sure wrk (Debian package) is there for the load tests' peak-throughput ladder.
# Without it `make loadtest` still runs, taking peaks from Locust alone, and says so.
set -euo pipefail
command -v wrk >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "wrk is not installed (sudo apt-get install -y wrk); peaks will come from Locust only" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null \
  || echo "could not install wrk; peaks will come from Locust only" >&2
