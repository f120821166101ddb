#!/usr/bin/env bash
# Installs what Apus needs on Debian, only when missing.
#   scripts/install-deps.sh          build/serve needs: libnghttp2-dev, zlib1g-dev, libjemalloc-dev, pkg-config
#   scripts/install-deps.sh --bench  plus the benchmarks' tools: h2load, nghttpd, protoc (request
#                                    bodies), valgrind (scripts/callgrind-serving.sh)
#   scripts/install-deps.sh --test   plus test tools: curl, h2load, nghttpd, protoc, Prometheus + promtool,
#                                    HAProxy, busybox + rclone (deploy tests),
#                                    Python h2/httpx/pytest/numpy/protobuf/mmh3/pyyaml/kubernetes-validate,
#                                    scikit-learn/skl2onnx/onnxruntime (tools/make_bundle.py)
set -euo pipefail

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in libnghttp2-dev zlib1g-dev libjemalloc-dev pkg-config; do
    have_pkg "$pkg" || need_apt+=("$pkg")
done
if [[ "${1:-}" == "--bench" ]]; then
    for pkg in nghttp2-client nghttp2-server protobuf-compiler valgrind; do
        have_pkg "$pkg" || need_apt+=("$pkg")
    done
fi
if [[ "${1:-}" == "--test" ]]; then
    for pkg in curl nghttp2-client nghttp2-server python3-pip protobuf-compiler prometheus haproxy busybox rclone; do
        have_pkg "$pkg" || { [[ "$pkg" == python3-pip ]] && command -v pip3 >/dev/null; } || need_apt+=("$pkg")
    done
fi
if ((${#need_apt[@]})); then
    echo "installing: ${need_apt[*]}" >&2
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [[ "${1:-}" == "--test" ]]; then
    missing_py=()
    python3 -c "import h2, hyperframe" 2>/dev/null || missing_py+=(h2 hyperframe)
    python3 -c "import httpx" 2>/dev/null || missing_py+=(httpx)
    python3 -c "import pytest" 2>/dev/null || missing_py+=(pytest)
    python3 -c "import numpy" 2>/dev/null || missing_py+=(numpy)
    python3 -c "import google.protobuf" 2>/dev/null || missing_py+=(protobuf)
    python3 -c "import mmh3" 2>/dev/null || missing_py+=(mmh3)
    python3 -c "import yaml" 2>/dev/null || missing_py+=(pyyaml)
    python3 -c "import jsonschema" 2>/dev/null || missing_py+=(jsonschema)
    python3 -c "import kubernetes_validate" 2>/dev/null || missing_py+=(kubernetes-validate)
    # tools/make_bundle.py's end-to-end test: scikit-learn -> skl2onnx -> checked by onnxruntime.
    python3 -c "import sklearn, joblib" 2>/dev/null || missing_py+=(scikit-learn joblib)
    python3 -c "import skl2onnx" 2>/dev/null || missing_py+=(skl2onnx)
    python3 -c "import onnxruntime" 2>/dev/null || missing_py+=(onnxruntime)
    if ((${#missing_py[@]})); then
        echo "installing Python packages: ${missing_py[*]}" >&2
        python3 -m pip install -q "${missing_py[@]}"
    fi
fi

command -v swift >/dev/null || { echo "swift is not on PATH: install the Swift 6 toolchain (https://www.swift.org/install/linux/)" >&2; exit 1; }
