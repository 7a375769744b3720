# Sourced by the scripts of make images and make images-test: from the repository's root, podman with this
# folder's containers.conf, and the version the images are tagged with (Directory.Build.props).
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CONTAINERS_CONF="$PWD/operator/images/containers.conf"
version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -1)"
