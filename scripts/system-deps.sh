#!/usr/bin/env bash
# Install the Debian packages the test suite needs beyond Python wheels (idempotent).
# Today: a Chinese font (WenQuanYi Micro Hei) to draw synthetic ID cards for the OCR tests.
# As root (CI, this project's machines) it installs what is missing; otherwise it prints the
# sudo command to run. Does nothing when everything is already there.
set -euo pipefail
packages=(fonts-wqy-microhei)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${missing[*]}; run: sudo apt-get update && sudo $cmd" >&2
  # Locally the tests that need them skip; in CI they fail, so fail here too.
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd >/dev/null
echo "system-deps: installed ${missing[*]}"
