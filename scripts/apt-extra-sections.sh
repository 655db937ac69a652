#!/bin/sh
# apt-extra-sections.sh [SECTION...]: adds the given archive sections (default:
# contrib non-free) for every Debian source this machine already has, by copying
# its own configured entries with other components. No host is named here: the
# entries keep whatever URIs the machine was set up with (a mirror, a snapshot).
# Writes /etc/apt/sources.list.d/gorgoclip-extra.sources (deb822) and prints it.
set -eu
sections=${*:-contrib non-free}
out=/etc/apt/sources.list.d/gorgoclip-extra.sources
tmp=$(mktemp)
# deb822 files: every stanza of type deb whose components include main.
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  [ "$f" = "$out" ] && continue
  awk -v sections="$sections" '
    function flush() {
      if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && enabled !~ /no/) {
        printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n", uris, suites, sections
        if (signed != "") printf "Signed-By: %s\n", signed
        printf "\n"
      }
      types = uris = suites = comps = signed = enabled = ""
    }
    /^[ \t]*$/ { flush(); next }
    /^#/ { next }
    { key = $1; sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val) }
    key == "Types" { types = val } key == "URIs" { uris = val } key == "Suites" { suites = val }
    key == "Components" { comps = val } key == "Signed-By" { signed = val } key == "Enabled" { enabled = val }
    END { flush() }' "$f" >> "$tmp"
done
# One-line format: deb URI SUITE main ... -> the same with the extra sections.
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  awk -v sections="$sections" '$1 == "deb" && / main( |$)/ {
      opts = ""; i = 2
      if ($2 ~ /^\[/) { while ($i !~ /\]$/) { opts = opts $i " "; i++ } opts = opts $i; i++ }
      printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n\n", $i, $(i+1), sections
    }' "$f" >> "$tmp"
done
if [ ! -s "$tmp" ]; then
  echo "apt-extra-sections: no Debian source with component main found in /etc/apt" >&2
  rm -f "$tmp"
  exit 1
fi
mv "$tmp" "$out"
chmod 644 "$out"
cat "$out"
