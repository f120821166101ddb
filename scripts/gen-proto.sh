#!/usr/bin/env bash
# Regenerates the committed Swift code from the .proto files:
#   proto-spec/third_party/onnx/onnx-ml.proto -> Sources/ApusONNX/Generated/onnx-ml.pb.swift
#   proto-spec/apus/v1/*.proto               -> Sources/ApusWire/Generated/ (when that module exists)
# Uses Debian's protoc 3.21 and protoc-gen-swift built once (~70 s, cached in .build-protoc/) from the
# very swift-protobuf checkout Package.swift resolved, so generator and library versions match and
# no network is needed.
#   scripts/gen-proto.sh          regenerate
#   scripts/gen-proto.sh --check  regenerate into a temp dir and fail if the committed code differs
set -euo pipefail
cd "$(dirname "$0")/.."
PLUGIN_DIR="$PWD/.build-protoc"

if ! command -v protoc >/dev/null; then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq protobuf-compiler >/dev/null
fi
checkout=.build/checkouts/swift-protobuf
[[ -d "$checkout" ]] || swift package resolve
PLUGIN="$PLUGIN_DIR/release/protoc-gen-swift"
if [[ ! -x "$PLUGIN" ]]; then
    swift build -c release --product protoc-gen-swift --package-path "$checkout" --scratch-path "$PLUGIN_DIR" >&2
fi

out_root="$PWD"
if [[ "${1:-}" == "--check" ]]; then
    out_root=$(mktemp -d)
    trap 'rm -rf "$out_root"' EXIT
fi

generate() { # proto_dir proto_file out_dir
    mkdir -p "$out_root/$3"
    protoc --plugin=protoc-gen-swift="$PLUGIN" -I "$1" --swift_out="$out_root/$3" --swift_opt=Visibility=Internal "$2"
}
generate proto-spec/third_party/onnx onnx-ml.proto Sources/ApusONNX/Generated
if [[ -d Sources/ApusWire ]]; then
    for proto in proto-spec/apus/v1/*.proto; do
        generate proto-spec "${proto#proto-spec/}" Sources/ApusWire/Generated
    done
fi

if [[ "${1:-}" == "--check" ]]; then
    diff -r "$out_root/Sources/ApusONNX/Generated" Sources/ApusONNX/Generated
    [[ -d Sources/ApusWire ]] && diff -r "$out_root/Sources/ApusWire/Generated" Sources/ApusWire/Generated
    echo "generated code matches the .proto files"
fi
