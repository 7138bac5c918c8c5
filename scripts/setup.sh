#!/usr/bin/env bash
# Installs what gramhd needs on a Debian (bookworm) machine. Idempotent: every step checks first.
#   - a Vulkan loader and, when no GPU driver is present, Mesa's lavapipe from bookworm-backports
#     (bookworm's own Mesa 22 is refused by Dawn)
#   - Chromium for the browser tests (skip with GRAMHD_NO_CHROMIUM=1)
#   - MPICH for multi-process (data-parallel) runs and their tests
#   - the npm dependencies (npm install of the locked versions)
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "gramhd setup: this step needs root. Run: sudo bash scripts/setup.sh" >&2
    echo "  (or by hand: $1)" >&2
    exit 1
  fi
}

# (no `| grep -q` here: under pipefail an early-exiting grep fails the pipeline)
have_vulkan_loader() {
  [ -n "$(ldconfig -p | grep 'libvulkan.so.1' || true)" ]
}

have_vulkan_icd() {
  [ -n "$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null || true)" ]
}

have_nvidia_icd() {
  [ -n "$(ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* 2>/dev/null || true)" ]
}

mesa_is_new_enough() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 24
}

apt_updated=0
apt_update() { if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi; }

if [ -f /etc/debian_version ]; then
  if ! have_nvidia_icd && { ! have_vulkan_loader || ! have_vulkan_icd || ! mesa_is_new_enough; }; then
    need_root "add bookworm-backports to /etc/apt/sources.list.d/debian.sources, then apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1"
    src=/etc/apt/sources.list.d/debian.sources
    if [ -f $src ] && ! grep -q bookworm-backports $src; then
      sed -i '0,/^Suites: bookworm bookworm-updates$/s//Suites: bookworm bookworm-updates bookworm-backports/' $src
    fi
    if [ ! -f $src ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list
    fi
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
    echo "gramhd setup: installed Mesa lavapipe (software Vulkan) and the Vulkan loader"
  fi
  if [ "${GRAMHD_NO_CHROMIUM:-0}" != 1 ] && ! command -v chromium >/dev/null; then
    need_root "apt-get install chromium"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    echo "gramhd setup: installed Chromium"
  fi
  # MPICH for multi-process training and its tests (`mpiexec -n N node bin/gramhd.js train ...`);
  # a single-process run never loads it.
  if ! command -v mpiexec >/dev/null || [ -z "$(ldconfig -p | grep 'libmpich.so.12' || true)" ]; then
    need_root "apt-get install mpich"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mpich >/dev/null
    echo "gramhd setup: installed MPICH"
  fi
fi

# `npm install`, not `npm ci`: @napi-rs/webcodecs 1.3.1 (the newest with a linux-x64 binary) lists
# platform packages that were never published for other systems, which `npm ci` refuses as a lock
# mismatch; `npm install` skips them and still installs the locked versions.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund --loglevel=error
fi
echo "gramhd setup: done"
