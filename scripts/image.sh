#!/usr/bin/env bash
# Builds the bridge's container image from the working tree, pulling nothing: a static
# binary built here (CGO_ENABLED=0, -trimpath, the version stamped in), the build machine's
# CA certificates, FROM scratch (see Dockerfile). `make image` and the image tests run it.
#
#   scripts/image.sh [TAG]      default $IMAGE, else socialbridge/bridge:latest
#
# Environment (optional): VERSION (default: git describe), GO (default go).
# Concurrent runs (test packages in parallel) take turns on bin/image through a lock.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
TAG=${1:-${IMAGE:-socialbridge/bridge:latest}}
GO=${GO:-go}
CERTS=/etc/ssl/certs/ca-certificates.crt
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

[[ -r "$CERTS" ]] || { echo "image.sh: $CERTS not found: install Debian's ca-certificates" >&2; exit 1; }
mkdir -p bin
exec 9>bin/.image.lock
flock 9

rm -rf bin/image
mkdir -p bin/image/data
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.buildVersion=$VERSION" -o bin/image/bridge ./cmd/bridge
cp "$CERTS" bin/image/ca-certificates.crt
# The legacy builder: BuildKit is not always installed, and nothing here needs it.
DOCKER_BUILDKIT=0 docker build -q -t "$TAG" \
	--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "CREATED=$CREATED" . >/dev/null
echo "image.sh: built $TAG (version $VERSION)" >&2
