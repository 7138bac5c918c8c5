#!/usr/bin/env bash
# Packs gramhd for a Linux machine of this one's architecture that has a GPU driver but no Node.js,
# npm registry or internet (a cluster node, a lent GPU): Node itself and Dawn's dawn.node (xz), the
# CLI and the GPU-side test files each bundled into one .mjs by esbuild, and the Vulkan loader's
# .deb files (with the glvnd libraries NVIDIA's ICD, libGLX_nvidia.so.0, needs) where apt can
# download them.
# The folder goes inside a checkout (it reads configs, checkpoints and golden files from there):
#   bash scripts/bundle-offline.sh            # writes .gpu/ (git ignores it)
#   bash .gpu/gramhd bench model --config GRAMHD256_FFHQ
#   bash .gpu/test.sh                         # ends with "N passed, N failed"
# About 35 MB. Tests that start the CLI through tsx, spawn workers or drive Chromium stay behind.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.gpu}
# dist/ is what a run unpacks dawn.node into: not carried again
rm -rf "$out/t" "$out/gramhd.mjs" "$out/node_modules/webgpu/dist"
mkdir -p "$out/t" "$out/node_modules/webgpu" "$out/debs"
esbuild() {
  npx esbuild "$@" --bundle --platform=node --format=esm --target=node20 --log-level=error \
    --external:webgpu --external:@napi-rs/webcodecs --external:koffi --external:esbuild \
    --external:playwright-core --external:tsx \
    --banner:js="import { createRequire as __gramhdCreateRequire } from 'module'; const require = __gramhdCreateRequire(import.meta.url);"
}
# one directory below the checkout, like bin/: paths the code resolves from its own URL
# ('../ckpts', the tests' '../..') land where they do in the sources
esbuild cli/main.ts --outfile="$out/gramhd.mjs"
for dir in engine model io eval; do
  files=$(ls test/$dir/*.test.ts | grep -v 'test/engine/errors.test.ts' || true)
  [ -n "$files" ] && esbuild $files --outdir="$out/t" --entry-names="$dir-[name]" --out-extension:.js=.mjs
done
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$out/node_modules/webgpu/"
# this machine's Node and Dawn: the bundle runs on Linux machines of the same architecture
arch=$(node -p process.arch)
dawn=node_modules/webgpu/dist/linux-$arch/dawn.node
[ -f "$dawn" ] || { echo "bundle-offline: no $dawn (the webgpu package has no Dawn for linux-$arch)" >&2; exit 1; }
echo "$arch" > "$out/arch"
[ "$out/dawn.node.xz" -nt "$dawn" ] || xz -T2 -c "$dawn" > "$out/dawn.node.xz"
[ "$out/node.xz" -nt "$(command -v node)" ] || xz -T2 -c "$(command -v node)" > "$out/node.xz"
if command -v apt-get > /dev/null && [ -z "$(ls "$out"/debs/*.deb 2>/dev/null || true)" ]; then
  (cd "$out/debs" && apt-get download -qq libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2 2>/dev/null) ||
    echo "bundle-offline: could not download the Vulkan loader's .deb files; the target needs libvulkan.so.1" >&2
fi
cp scripts/offline/env.sh scripts/offline/gramhd scripts/offline/test.sh "$out/"
echo "bundle-offline: $out ($(du -sh "$out" | cut -f1))"
