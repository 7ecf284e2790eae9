#!/usr/bin/env bash
# Optional Debian pieces for genda's embedded data: extra fonts (syndigits), nature
# wallpapers (mnistm photos) and Fashion-MNIST (downloaded into the cache, not installed).
# Never fails: without apt-get (or root) genda builds from what pip ships and says so.
set -u
FONTS="fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf fonts-urw-base35
  fonts-roboto-unhinted fonts-open-sans fonts-lato fonts-crosextra-carlito fonts-crosextra-caladea
  fonts-cantarell fonts-go fonts-linuxlibertine fonts-comic-neue fonts-noto-core"
PHOTOS="mate-backgrounds plasma-workspace-wallpapers"
TOOLS="chromium"  # headless rendering test of the report (tests skip without it)
CACHE="${GENDA_CACHE:-$HOME/.cache/genda}"

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_debian_extras: no apt-get here; skipping extra fonts, photos and Fashion-MNIST" \
       "(genda builds from pip-shipped fonts/photos; 'python -m genda.data list' shows what is left out)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "install_debian_extras: not root and no passwordless sudo; skipping apt-get install"; fi
fi
if [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; then
  $SUDO apt-get update -qq >/dev/null 2>&1 || echo "install_debian_extras: apt-get update failed"
  for p in $FONTS $PHOTOS $TOOLS; do
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$p" \
      >/dev/null 2>&1 || echo "install_debian_extras: could not install $p (skipped)"
  done
fi
# Fashion-MNIST: download the .deb and unpack it into the cache (no root needed).
FM="$CACHE/debian/dataset-fashion-mnist"
if [ ! -d "$FM/usr/share/datasets/fashion-mnist" ]; then
  TMP="$(mktemp -d)"
  if (cd "$TMP" && apt-get download dataset-fashion-mnist >/dev/null 2>&1); then
    mkdir -p "$FM" && dpkg-deb -x "$TMP"/dataset-fashion-mnist_*.deb "$FM" \
      && echo "install_debian_extras: Fashion-MNIST unpacked into $FM"
  else
    echo "install_debian_extras: could not download dataset-fashion-mnist (domain 'fashion' left out)"
  fi
  rm -rf "$TMP"
fi
exit 0
