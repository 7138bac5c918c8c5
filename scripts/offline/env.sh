# Sourced by the offline bundle's commands (scripts/bundle-offline.sh): unpacks Node and dawn.node
# on first use, installs the carried Vulkan loader where the system has none (root only: it
# unpacks into /), and points the loader at NVIDIA's ICD where a container mounts the driver
# outside the standard folders.
bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${GRAMHD_OFFLINE_CACHE:-/tmp/gramhd-offline}
mkdir -p "$cache"
if [ ! -x "$cache/node" ]; then xz -dc "$bundle/node.xz" > "$cache/node.part" && chmod +x "$cache/node.part" && mv "$cache/node.part" "$cache/node"; fi
arch=$(cat "$bundle/arch")
case "$(uname -m)/$arch" in
  x86_64/x64 | aarch64/arm64) ;;
  *) echo "gramhd offline: this bundle is for linux-$arch, this machine is $(uname -m)" >&2; exit 1 ;;
esac
dawn="$bundle/node_modules/webgpu/dist/linux-$arch/dawn.node"
if [ ! -f "$dawn" ]; then mkdir -p "$(dirname "$dawn")" && xz -dc "$bundle/dawn.node.xz" > "$dawn.part" && mv "$dawn.part" "$dawn"; fi
if [ -z "$(ldconfig -p | grep 'libvulkan.so.1' || true)" ]; then
  if [ "$(id -u)" = 0 ] && [ -n "$(ls "$bundle"/debs/*.deb 2>/dev/null || true)" ]; then
    for deb in "$bundle"/debs/*.deb; do dpkg -x "$deb" /; done
    ldconfig
  else
    echo "gramhd offline: no Vulkan loader (libvulkan.so.1); run this once as root to install the one in $bundle/debs" >&2
    exit 1
  fi
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ] && [ -z "$(ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* 2>/dev/null || true)" ]; then
  export VK_DRIVER_FILES=$nvidia_icd
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
node="$cache/node"
