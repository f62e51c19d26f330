#!/usr/bin/env bash
# Refresh the vendored uPlot (the dashboard's charts) from the npm registry:
#   scripts/vendor-uplot.sh 1.6.32
# It is inlined into /dashboard by service/api/dashboard.py: no CDN, works offline.
set -euo pipefail
version="${1:?usage: scripts/vendor-uplot.sh VERSION}"
dest="$(cd "$(dirname "$0")/.." && pwd)/service/api/vendor/uplot"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "uplot@$version" >/dev/null && tar xzf "uplot-$version.tgz")
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" \
   "$work/package/LICENSE" "$dest/"
if grep -qi "</script" "$dest/uPlot.iife.min.js"; then
  echo "uPlot's script contains </script: it cannot be inlined" >&2
  exit 1
fi
sum="$(sha256sum "$work/uplot-$version.tgz" | cut -d' ' -f1)"
cat > "$dest/VERSION" <<END
uplot $version (MIT, Leon Sorokin), from the npm registry: uplot-$version.tgz
sha256 $sum
files: dist/uPlot.iife.min.js, dist/uPlot.min.css, LICENSE
refresh: scripts/vendor-uplot.sh VERSION
END
echo "vendored uplot $version ($sum)"
