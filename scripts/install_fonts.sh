#!/usr/bin/env bash
# Install a curated set of freely licensed Debian font packages for synthetic text rendering.
#
# Every package below is in Debian main (free licences: OFL, Apache-2.0, GPL with font exception, GUST,
# Bitstream Vera, public domain); docs/fonts.md lists the families and licences. The set covers serif,
# sans, slab, monospace, condensed, rounded, display, script and handwriting Latin faces, and the CJK designs
# Debian packages for Simplified Chinese lines.
#
# Idempotent: packages already installed are skipped. Without root or without apt-get it prints a message
# and exits 0 (the synth engine falls back to whatever fonts exist, or to Pillow's built-in font).
set -u

PACKAGES=(
  fonts-dejavu-core
  fonts-dejavu-extra
  fonts-liberation2
  fonts-noto-core
  fonts-roboto-unhinted
  fonts-open-sans
  fonts-lato
  fonts-cantarell
  fonts-freefont-ttf
  fonts-urw-base35
  fonts-crosextra-carlito
  fonts-crosextra-caladea
  fonts-comfortaa
  fonts-linuxlibertine
  fonts-quicksand
  fonts-ebgaramond
  fonts-inconsolata
  fonts-firacode
  fonts-hack
  fonts-dancingscript
  fonts-cabin
  fonts-oldstandard
  fonts-lobstertwo
  fonts-courier-prime
  fonts-yanone-kaffeesatz
  fonts-inter
  fonts-averia-serif-gwf
  # more designs, among them 10 script and handwriting faces: one held-out family, Lobster Two, is a script
  # face, and the 27 packages above train on only three (the model card names which models saw which set)
  fonts-kaushanscript
  fonts-kristi
  fonts-leckerli-one
  fonts-rufscript
  fonts-breip
  fonts-comic-neue
  fonts-femkeklaver
  fonts-dkg-handwriting
  fonts-ecolier-court
  fonts-havana
  fonts-isabella
  fonts-sil-charis
  fonts-sil-andika
  fonts-league-spartan
  fonts-croscore
  fonts-play
  fonts-jura
  fonts-b612
  fonts-mononoki
  fonts-jetbrains-mono
  fonts-roboto-slab
  fonts-go
  fonts-gfs-didot
  fonts-goudybookletter
  fonts-fanwood
  fonts-prociono
  fonts-cherrybomb
  fonts-paratype
  fonts-okolaks
  fonts-beteckna
  fonts-adf-accanthis
  fonts-staypuft
  # CJK designs for synthetic text lines (docs/fonts.md): Source Han Sans/Serif, WenQuanYi Zen Hei,
  # Micro Hei and Droid Sans Fallback (one design), AR PL UMing and UKai, and LXGW WenKai (held out)
  fonts-noto-cjk
  fonts-wqy-zenhei
  fonts-wqy-microhei
  fonts-arphic-uming
  fonts-arphic-ukai
  fonts-lxgw-wenkai
  fonts-droid-fallback
)

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_fonts: apt-get not found; skipping font installation (using the fonts already on this system)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_fonts: not root; skipping. Run as root: sudo bash $0"
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install_fonts: all ${#PACKAGES[@]} font packages already installed"
  exit 0
fi

echo "install_fonts: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
  echo "install_fonts: install failed; refreshing package lists and retrying"
  apt-get update || { echo "install_fonts: apt-get update failed" >&2; exit 1; }
  apt-get install -y --no-install-recommends "${missing[@]}" || {
    echo "install_fonts: apt-get install failed" >&2
    exit 1
  }
fi
echo "install_fonts: done"
