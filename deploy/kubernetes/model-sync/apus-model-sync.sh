#!/bin/sh
# apus-model-sync: mirrors model bundles from object storage (any rclone remote) into Apus's model
# repository, one whole, verified version at a time. POSIX sh + busybox (the rclone image).
#
#   apus-model-sync.sh once   one pass; exit 0 when published (init container)
#   apus-model-sync.sh loop   a pass every $APUS_SYNC_INTERVAL seconds, forever (sidecar)
#
# Environment:
#   APUS_SYNC_SOURCE        rclone path of the repository in the bucket, e.g. objstore:bucket/apus/models
#                           (laid out like the repository: <model>/<version>/..., <model>/model.json)
#   APUS_SYNC_DATA          the shared volume (default /data); Apus serves $APUS_SYNC_DATA/models
#   APUS_SYNC_INTERVAL      seconds between passes (default 30)
#   APUS_SYNC_RCLONE_FLAGS  extra rclone flags (default below)
#
# Why not `rclone sync` straight into the repository: rclone replaces files one by one, so Apus
# (which rescans every --poll-interval) could see a version folder with a manifest whose model
# file is missing or half written. Apus never serves such a version, but it marks it FAILED (a
# load-failure alert) and does not retry it until its files change. So rclone mirrors the bucket
# into mirror/ (which Apus never reads), and a version is published only when it is complete:
# manifest present and every file's sha256 matching the manifest; it is copied to incoming/ and
# renamed into models/<model>/<version> with one `mv` on the same filesystem, so Apus sees either
# no folder or the whole verified version. Removed versions are renamed out before deletion.
set -u

SOURCE="${APUS_SYNC_SOURCE:?APUS_SYNC_SOURCE is not set (an rclone path such as objstore:my-bucket/apus/models)}"
DATA="${APUS_SYNC_DATA:-/data}"
INTERVAL="${APUS_SYNC_INTERVAL:-30}"
RCLONE_FLAGS="${APUS_SYNC_RCLONE_FLAGS:---checksum --fast-list --transfers 4 --retries 3 --low-level-retries 10 --contimeout 10s --timeout 5m}"

MIRROR="$DATA/mirror"      # rclone's copy of the bucket; never read by Apus
REPO="$DATA/models"        # Apus's --model-repository
INCOMING="$DATA/incoming"  # a version being copied, renamed into $REPO once complete
TRASH="$DATA/trash"        # versions renamed out of $REPO, then deleted
STATE="$DATA/state"        # model.json as last published per model; time of the last good pass

log() { printf '%s apus-model-sync: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# A version folder name as Apus reads it: digits, no leading zero (except "0").
is_version() {
    case "$1" in
        '' | *[!0-9]* | 0?*) return 1 ;;
        *) return 0 ;;
    esac
}

# 0 when $1 holds manifest.json and every file its "sha256" map lists has that digest.
verify() {
    dir=$1
    [ -f "$dir/manifest.json" ] || return 1
    pairs=$(tr -d ' \t\r\n' < "$dir/manifest.json" | sed -n 's/.*"sha256":{\([^}]*\)}.*/\1/p' | tr ',' '\n')
    [ -n "$pairs" ] || return 1
    printf '%s\n' "$pairs" | {
        while IFS= read -r pair; do
            name=$(printf '%s' "$pair" | sed -n 's/^"\([^"/]*\)":"\([0-9a-fA-F]\{64\}\)"$/\1/p')
            want=$(printf '%s' "$pair" | sed -n 's/^"\([^"/]*\)":"\([0-9a-fA-F]\{64\}\)"$/\2/p' | tr 'A-F' 'a-f')
            [ -n "$name" ] && [ -f "$dir/$name" ] || exit 1
            got=$(sha256sum "$dir/$name" | cut -d ' ' -f 1)
            [ "$got" = "$want" ] || exit 1
        done
        exit 0
    }
}

publish_version() {
    model=$1 version=$2
    src="$MIRROR/$model/$version" dst="$REPO/$model/$version"
    if [ -d "$dst" ] && diff -r -q "$src" "$dst" > /dev/null 2>&1; then
        return 0 # already published
    fi
    if ! verify "$src"; then
        log "$model/$version: incomplete in the source (manifest missing or a sha256 mismatch): not published"
        return 0
    fi
    tmp="$INCOMING/$model.$version.$$"
    rm -rf "$tmp"
    if ! cp -R "$src" "$tmp" || ! verify "$tmp"; then
        log "$model/$version: copy failed"
        rm -rf "$tmp"
        return 1
    fi
    mkdir -p "$REPO/$model" || return 1
    if [ -d "$dst" ]; then
        # Versions should be immutable (publish a new number instead): Apus unloads the old
        # contents and loads the new ones.
        log "$model/$version: changed in the source: replacing it"
        mv "$dst" "$TRASH/$model.$version.$$" || return 1
    fi
    if mv "$tmp" "$dst"; then
        log "$model/$version: published"
    else
        log "$model/$version: rename into the repository failed"
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$TRASH/$model.$version.$$"
}

# model.json is published after the model's versions (so its labels name versions that exist),
# and only when it changed in the source: Apus itself rewrites it when a label or the split is
# moved through its API, and an unchanged bucket copy must not undo that.
publish_settings() {
    model=$1
    src="$MIRROR/$model/model.json" last="$STATE/$model.model.json"
    [ -f "$src" ] && [ -d "$REPO/$model" ] || return 0
    if [ -f "$last" ] && cmp -s "$src" "$last"; then
        return 0
    fi
    tmp="$INCOMING/$model.model.json.$$"
    if cp "$src" "$tmp" && mv "$tmp" "$REPO/$model/model.json" && cp "$src" "$last"; then
        log "$model: model.json published"
    else
        rm -f "$tmp"
        return 1
    fi
}

# Versions (and models) gone from the source leave the repository: renamed out, then deleted.
remove_deleted() {
    for model_dir in "$REPO"/*/; do
        [ -d "$model_dir" ] || continue
        model=$(basename "$model_dir")
        if [ ! -d "$MIRROR/$model" ]; then
            mv "$REPO/$model" "$TRASH/$model.$$" && rm -rf "$TRASH/$model.$$" && rm -f "$STATE/$model.model.json" &&
                log "$model: removed (gone from the source)"
            continue
        fi
        for version_dir in "$model_dir"*/; do
            [ -d "$version_dir" ] || continue
            version=$(basename "$version_dir")
            is_version "$version" || continue
            if [ ! -d "$MIRROR/$model/$version" ]; then
                mv "$REPO/$model/$version" "$TRASH/$model.$version.$$" && rm -rf "$TRASH/$model.$version.$$" &&
                    log "$model/$version: removed (gone from the source)"
            fi
        done
    done
}

sync_pass() {
    mkdir -p "$MIRROR" "$REPO" "$INCOMING" "$TRASH" "$STATE" || return 1
    # shellcheck disable=SC2086 # RCLONE_FLAGS is a list of flags
    if ! rclone sync "$SOURCE" "$MIRROR" $RCLONE_FLAGS; then
        log "rclone sync from $SOURCE failed: nothing published or removed in this pass"
        return 1
    fi
    if [ -z "$(ls -A "$MIRROR")" ]; then
        # A wrong path or an empty bucket must not empty a serving repository.
        log "$SOURCE is empty: nothing published or removed"
        return 1
    fi
    status=0
    for model_dir in "$MIRROR"/*/; do
        [ -d "$model_dir" ] || continue
        model=$(basename "$model_dir")
        for version_dir in "$model_dir"*/; do
            [ -d "$version_dir" ] || continue
            version=$(basename "$version_dir")
            is_version "$version" || continue
            publish_version "$model" "$version" || status=1
        done
        publish_settings "$model" || status=1
    done
    remove_deleted
    [ "$status" -eq 0 ] && date +%s > "$STATE/last-success"
    return "$status"
}

case "${1:-loop}" in
    once)
        sync_pass
        ;;
    loop)
        trap 'exit 0' TERM INT
        while :; do
            sync_pass || log "pass failed; next try in ${INTERVAL}s"
            sleep "$INTERVAL" &
            wait $!
        done
        ;;
    *)
        echo "usage: $0 once|loop" >&2
        exit 2
        ;;
esac
