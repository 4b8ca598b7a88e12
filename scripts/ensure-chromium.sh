#!/usr/bin/env bash
# Make sure a Chromium exists for the console's browser tests (tests/console/, Playwright for Python).
# Playwright's own browser download is not used: Debian's chromium package is (it needs no network
# access beyond apt's). VOUCHERD_CHROMIUM points the tests at another binary.
set -euo pipefail

have_chromium() { [ -n "${VOUCHERD_CHROMIUM:-}" ] && [ -x "${VOUCHERD_CHROMIUM}" ] || command -v chromium >/dev/null 2>&1; }
have_chromium && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "the console's browser tests need Chromium (Debian package: chromium)" >&2
  echo "Install it with: sudo apt-get install -y chromium" >&2
  echo "(or set VOUCHERD_CHROMIUM to a Chromium binary; without one those tests are skipped)" >&2
  exit 0  # the rest of the suite runs; tests/console/ skips its browser tests and says why
fi
echo "installing chromium ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
