// What onnxruntime-node's bundled WebGPU provider needs on Linux, in plain words for the moment it
// fails to load. The provider is Dawn over Vulkan: it needs the Vulkan loader (libvulkan.so.1,
// Debian's libvulkan1) and the GPU driver's Vulkan ICD (for NVIDIA, nvidia_icd.json and the
// driver's Vulkan library; in a container NVIDIA_DRIVER_CAPABILITIES must include `graphics` for
// the runtime to mount them). onnxruntime itself only says "Failed to get a WebGPU adapter".
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const LIB_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/lib',
];
const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/local/nvidia/share/vulkan/icd.d'];

/** Whether an error from session creation is the WebGPU provider finding no adapter. */
export const isWebgpuAdapterFailure = (message: string) => /WebGPU adapter/i.test(message);

/** The Vulkan loader's path, or undefined. */
function vulkanLoader(env: NodeJS.ProcessEnv, libDirs: string[]): string | undefined {
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...libDirs];
  return dirs.map((d) => path.join(d, 'libvulkan.so.1')).find((f) => existsSync(f));
}

/** The Vulkan drivers (ICD manifests) the loader would find: VK_DRIVER_FILES / VK_ICD_FILENAMES, else the standard folders. */
function vulkanDrivers(env: NodeJS.ProcessEnv, icdDirs: string[]): string[] {
  const given = env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES;
  if (given) return given.split(':').filter((f) => existsSync(f));
  return icdDirs.flatMap((d) => {
    try {
      return readdirSync(d)
        .filter((f) => f.endsWith('.json'))
        .map((f) => path.join(d, f));
    } catch {
      return [];
    }
  });
}

/** Why the WebGPU provider found no GPU on this machine, as far as the files tell (the folders are the standard ones but for tests). */
export function explainWebgpuFailure(env: NodeJS.ProcessEnv = process.env, dirs = { lib: LIB_DIRS, icd: ICD_DIRS }): string {
  const loader = vulkanLoader(env, dirs.lib);
  if (!loader)
    return 'the Vulkan loader libvulkan.so.1 is not installed (Debian/Ubuntu: apt-get install libvulkan1); the webgpu provider runs on Vulkan and needs it beside the GPU driver';
  const drivers = vulkanDrivers(env, dirs.icd);
  if (!drivers.length)
    return `no Vulkan driver is installed: ${loader} found no ICD manifest in ${dirs.icd.join(', ')} (nor VK_DRIVER_FILES); install the GPU driver's Vulkan ICD (NVIDIA: nvidia_icd.json, in a container NVIDIA_DRIVER_CAPABILITIES must include "graphics")`;
  return `the Vulkan driver found no usable GPU (loader ${loader}, drivers ${drivers.join(', ')}): is a GPU visible to this process (nvidia-smi; in a container NVIDIA_DRIVER_CAPABILITIES must include "graphics")?`;
}
