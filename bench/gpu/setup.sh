# Sourced by bench/gpu-check.sh on the GPU machine, with the folder bench/gpu/bundle.sh made: unpacks
# Node to $W/node and the project to $APP ($W/app), installs the Vulkan loader (for webgpu, not with CPU=1),
# points it at the NVIDIA driver's Vulkan ICD, and puts the built-in encoders where the project
# looks for them. Usage: W=<work dir> . bench/gpu/setup.sh <bundle dir>
b=$(readlink -f "$1")
APP=$W/app
python3 - "$b" "$W" <<'PY'
import lzma, os, shutil, sys, tarfile
b, w = sys.argv[1], sys.argv[2]
os.makedirs(w + '/node', exist_ok=True)
if not os.path.exists(w + '/node/node'):
    with lzma.open(b + '/node.xz') as f, open(w + '/node/node', 'wb') as o: shutil.copyfileobj(f, o)
    os.chmod(w + '/node/node', 0o755)
if not os.path.exists(w + '/app/package.json'):
    with tarfile.open(b + '/app.tar.xz') as t: t.extractall(w + '/app')
PY
export PATH=$W/node:$PATH
# The loader into / (the GPU machine's root), as Debian's package would put it.
if [ -z "${CPU:-}" ] && [ "${PROVIDER:-webgpu}" = webgpu ]; then
  for f in "$b"/gl/*.deb; do dpkg -x "$f" / 2>/dev/null || true; done
  ldconfig 2>/dev/null || true
fi
for j in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$j" ] && { export VK_DRIVER_FILES=$j; break; }
done
export MEGAPAIRS_CACHE=$W/cache
mkdir -p "$MEGAPAIRS_CACHE/models" && cp "$b"/builtin/* "$MEGAPAIRS_CACHE/models/"
echo "node $(node --version), app in $APP, VK_DRIVER_FILES=${VK_DRIVER_FILES:-none}" >&2
