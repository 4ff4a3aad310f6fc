#!/usr/bin/env bash
# Packs what bench/gpu-check.sh needs on a GPU machine that has Python (torch, onnx) but no Node and
# no network: Node itself, the compiled project with its production dependencies for linux-x64,
# the Vulkan loader that onnxruntime-node's bundled WebGPU provider (Dawn) needs (Debian's
# libvulkan1, with libglvnd0 for the driver's Vulkan library) and the built-in encoders. About
# 55 MB. Run it from the project's root after `npm ci`, on linux-x64 with the npm registry and apt.
# Usage: bash bench/gpu/bundle.sh [dest, default .gpu-bundle]   (git ignores .gpu-bundle)
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=$(readlink -f "${1:-.gpu-bundle}")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
rm -rf "$dest" && mkdir -p "$dest/gl" "$dest/builtin" "$stage/app"
npm run build >/dev/null
tar -cf - package.json package-lock.json .npmrc bin configs dist | tar -x -C "$stage/app"
(cd "$stage/app" && npm ci --omit=dev --no-audit --no-fund >/dev/null 2>&1)
# Only the linux-x64 native binaries travel; typescript is an optional peer of a dependency.
rm -rf "$stage/app/node_modules/onnxruntime-node/bin/napi-v6/"{win32,darwin} \
  "$stage/app/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64" "$stage/app/node_modules/typescript"
tar -C "$stage/app" -cf - . | xz -T0 -6 >"$dest/app.tar.xz"
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" >"$dest/node.xz"
(cd "$dest/gl" && apt-get download libvulkan1 libglvnd0 >/dev/null 2>&1)
ls "$dest"/gl/libvulkan1_*.deb >/dev/null
node bin/megapairs.js models --out "$dest/builtin" >/dev/null
du -sh "$dest"
