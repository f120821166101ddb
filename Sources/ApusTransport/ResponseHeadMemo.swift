import ApusCore

/// What a connection's response header list (`NGHTTP2HeaderList`) was last packed from, so the
/// next answer packs only where it differs.
///
/// Answers on one connection mostly repeat their head: the same status, body length, content
/// type and serving version, with only the request id changing at the end. Packing copies every
/// name and value into the list (about 85 instructions a string); comparing a field with the one
/// at its place in the last answer is a few instructions when they share storage or are inline
/// strings, which these are. So the longest shared prefix (status, content-length, then fields
/// in order) keeps its packed bytes and the rest is packed anew. The list comes out field for
/// field as a fresh packing would. Fields compare as Swift strings, by canonical equivalence: a
/// value equal to the previous one only under it (the same text, composed differently) keeps
/// the previous one's bytes; ASCII values, which is what answers carry, compare byte for byte.
///
/// Invariant: while `status >= 0`, the list holds exactly the packing of (`status`,
/// `bodyCount`, `fields`). Whoever packs the list for anything else calls `forget()` first.
/// Not thread-safe: one connection's event loop owns it, with the list.
struct ResponseHeadMemo {
    private var status = -1
    private var bodyCount = -1
    private var fields: [HTTPFields.Field] = []

    /// Answers whose head kept at least its status and length from the previous one (for tests
    /// and profiling).
    private(set) var reusedHeads = 0

    /// Packs `:status`, `content-length` and `headers` (minus the fields the transport sets
    /// itself) into `list`, reusing the packed prefix it shares with the last call.
    mutating func pack(status: Int, bodyCount: Int, headers: HTTPFields, into list: NGHTTP2HeaderList) {
        let new = headers.fields
        var shared = 0
        var kept = 0
        if status == self.status, bodyCount == self.bodyCount {
            kept = 2
            while shared < new.count, shared < fields.count, new[shared] == fields[shared] {
                if !Self.isSetByTransport(new[shared].name) { kept += 1 }
                shared += 1
            }
            reusedHeads += 1
            list.removeAll(keepingFirst: kept)
        } else {
            list.removeAll()
            list.append(literal: ":status", decimal: status)
            list.append(literal: "content-length", decimal: bodyCount)
        }
        for field in new[shared...] where !Self.isSetByTransport(field.name) {
            list.append(field.name, field.value, indexed: !Self.isUnique(field.name))
        }
        self.status = status
        self.bodyCount = bodyCount
        fields = new
    }

    /// The list was packed with something else: the next `pack` starts afresh.
    mutating func forget() {
        status = -1
        fields = []
    }

    /// Fields the transport writes itself (the length) or that HTTP/2 forbids (connection).
    /// Lengths first: this runs for every field of every answer.
    static func isSetByTransport(_ name: String) -> Bool {
        let length = name.utf8.count
        return (length == 14 && name == "content-length") || (length == 10 && name == "connection")
    }

    /// Values that never repeat (request ids) go out as HPACK literals never indexed: adding each
    /// to the dynamic table would only evict entries that do repeat.
    static func isUnique(_ name: String) -> Bool {
        name.utf8.count == 12 && name == "x-request-id"
    }
}
