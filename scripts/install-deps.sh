#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian packages (bookworm or newer; Ubuntu 24.04).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
PKGS=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev libonnx-dev libprotobuf-dev protobuf-compiler libopencv-imgproc-dev
  libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libicu-dev libsleef-dev
  libpng-dev libturbojpeg0-dev libjpeg62-turbo-dev libwebp-dev libzip-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev libomp-dev
  python3 python3-numpy python3-torch python3-onnx libopenblas0-pthread
  chromium nodejs
)
# npm: Debian's package, unless a nodejs that bundles npm (e.g. NodeSource's, which conflicts with it) is there.
if ! command -v npm > /dev/null; then PKGS+=(npm); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
