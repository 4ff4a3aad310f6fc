# Sourced by bench/gpu-check.sh on the GPU machine, with the folder bench/gpu/bundle.sh made: unpacks
# Node to /tmp/node and the project to /tmp/app, installs the Vulkan loader, points it at the
# NVIDIA driver's Vulkan ICD, and puts the built-in encoders where the project looks for them.
# Usage: . bench/gpu/setup.sh <bundle dir>
b=$(readlink -f "$1")
python3 - "$b" <<'PY'
import lzma, os, shutil, sys, tarfile
b = sys.argv[1]
os.makedirs('/tmp/node', exist_ok=True)
if not os.path.exists('/tmp/node/node'):
    with lzma.open(b + '/node.xz') as f, open('/tmp/node/node', 'wb') as o: shutil.copyfileobj(f, o)
    os.chmod('/tmp/node/node', 0o755)
if not os.path.exists('/tmp/app/package.json'):
    with tarfile.open(b + '/app.tar.xz') as t: t.extractall('/tmp/app')
PY
export PATH=/tmp/node:$PATH
# The loader into / (the GPU machine's root), as Debian's package would put it.
for f in "$b"/gl/*.deb; do dpkg -x "$f" / 2>/dev/null || true; done
ldconfig 2>/dev/null || true
for j in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$j" ] && { export VK_DRIVER_FILES=$j; break; }
done
export MEGAPAIRS_CACHE=/tmp/mpcache
mkdir -p "$MEGAPAIRS_CACHE/models" && cp "$b"/builtin/* "$MEGAPAIRS_CACHE/models/"
echo "node $(node --version), app in /tmp/app, VK_DRIVER_FILES=${VK_DRIVER_FILES:-none}" >&2
