import ApusCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The application-side state of one HTTP/2 connection: its stream table, limits, timers, junk
/// budget and drain. nghttp2 owns framing and flow control; this owns every decision nghttp2 does
/// not make (see the brief: nghttp2 bounds neither header lists, junk frames nor slow peers).
///
/// A pure state machine: events come in with the current time in nanoseconds, decisions come out
/// as `Action`s the I/O shell (`HTTP2ServerHandler`) carries out. Not thread-safe: owned by one
/// event loop.
struct HTTP2ConnectionStateMachine {
    enum Action: Equatable {
        /// A complete, valid request: the shell takes it with `takeRequest(_:)` and hands it to
        /// the responder. The request stays in the stream table until then, so the action is a
        /// plain value (queued and copied for free, no reference counting per request).
        case dispatch(streamID: Int32)
        /// Answer the stream with a transport-generated error (431, 413, 408).
        case respondWithError(streamID: Int32, status: Int, message: String)
        /// An interim `100` response: the request carries `expect: 100-continue` and its client
        /// waits for one before sending the body (curl waits a second when none comes).
        case sendContinue(streamID: Int32)
        /// GOAWAY with `errorCode`, then close once written.
        case goAwayAndClose(errorCode: UInt32, reason: String)
        /// Start a graceful drain: GOAWAY with stream id 2^31-1 (the shutdown notice).
        case sendShutdownNotice
        /// The final GOAWAY naming the last stream we processed.
        case sendFinalGoAway
        /// Close the TCP connection now.
        case close(reason: String)
    }

    enum Phase: Equatable { case headers, body, dispatched, answered, rejected }

    struct Stream {
        var id: Int32
        var phase: Phase = .headers
        var openedAt: Int64
        var headersDoneAt: Int64 = 0
        /// Empty until the stream's header block is complete (it collects in `block`).
        var head = HeaderBlock()
        var body: [UInt8] = []
        /// `takeRequest` handed the request out (the stream stays until it closes).
        var requestTaken = false
    }

    /// A request's header block as it arrives.
    struct HeaderBlock {
        /// The stream it belongs to (0: none; client streams are odd).
        var id: Int32 = 0
        var headerBytes = 0
        var headerCount = 0
        var method = ""
        var path = ""
        var fields = HTTPFields()
        var rejection: (status: Int, message: String)?
        /// The content-length field's value, read as the field arrives so the limit and length
        /// checks need no lookup (nil: none).
        var declaredLength: Int?
        /// `PseudoField` bits of the pseudo-header fields (and `host`) seen, each allowed once.
        var seen: UInt8 = 0
        /// A regular field arrived: pseudo-header fields may no longer (RFC 9113 8.3).
        var regularSeen = false
        /// `expect: 100-continue` arrived.
        var expectsContinue = false
    }

    enum DrainState: Equatable { case active, noticeSent, finalGoAwaySent, closed }

    // NGHTTP2 error codes, repeated here so this type stays free of the C module.
    static let noError: UInt32 = 0
    static let protocolError: UInt32 = 1
    static let enhanceYourCalm: UInt32 = 0xb

    let limits: TransportLimits
    /// Open streams, in no particular order (a closed stream's slot takes the last entry: answers
    /// finish roughly oldest first, and closing the oldest by shifting every later entry down was
    /// a memmove of kilobytes per request). At most MAX_CONCURRENT_STREAMS (100 by default)
    /// entries, so a linear scan beats hashing, and entries mutate in place (no copy-on-write of
    /// header arrays per header field).
    private(set) var streams: [Stream] = []
    /// `streams[i].id` for every i, kept alongside: the scan for a stream (once per nghttp2
    /// callback) reads four bytes an entry instead of walking the entries themselves.
    private var ids: [Int32] = []
    private(set) var junkFrames = 0
    /// The request header block being received. HTTP/2 sends a block as one contiguous run of
    /// frames, with no frame of another stream in between (RFC 9113 section 4.3), so at most one
    /// is in progress: its fields collect here and move into their stream when it ends. A field
    /// then updates this one struct, not an entry of `streams` found by id (bounds- and
    /// uniqueness-checked at every access).
    var block = HeaderBlock()
    /// The connection's last accepted request block, reused whole when a block repeats it (see
    /// `HeaderBlockMemo`), and the fields of the block in progress, recorded to become the next one.
    private var memo = HeaderBlockMemo()
    private var recording = HeaderBlockMemo()
    /// While true, every field of the block in progress has repeated the memo's so far: they are
    /// counted, not processed (`repeatedFields` of them, `repeatedBytes` long).
    private var repeating = false
    private var repeatedFields = 0
    private var repeatedBytes = 0
    /// Blocks that repeated the memo whole (for tests: the reuse is otherwise invisible).
    private(set) var repeatedBlocks = 0
    /// Repeated header names and values of this connection, made into strings once.
    var strings = HeaderStringCache()
    /// Request paths and the authority (kept apart so unique paths do not evict header values).
    var targets = HeaderStringCache(capacity: 4)
    /// The last :authority that passed its check (see `pseudoFieldReceived`).
    var validatedAuthority: String?
    private(set) var drain: DrainState = .active
    private var idleSince: Int64?
    private var unwritableSince: Int64?
    /// Since when answers have waited for the peer's flow-control window without any progress.
    private var flowBlockedSince: Int64?

    init(limits: TransportLimits, now: Int64) {
        self.limits = limits
        self.idleSince = now
    }

    // MARK: Stream events

    private func index(of id: Int32) -> Int? {
        ids.withUnsafeBufferPointer { ids in
            var i = ids.count - 1
            while i >= 0 {
                if ids[i] == id { return i }
                i -= 1
            }
            return nil
        }
    }

    private mutating func append(_ stream: Stream) {
        ids.append(stream.id)
        streams.append(stream)
    }

    mutating func streamOpened(_ id: Int32, now: Int64) {
        // Built in its slot: a local copy moved in cost a copy and a destroy of the whole entry.
        ids.append(id)
        streams.append(Stream(id: id, openedAt: now))
        block = HeaderBlock(id: id)
        recording.removeAll()
        repeatedFields = 0
        repeatedBytes = 0
        repeating = memo.block != nil
        // Room for a typical block's fields, unless the memo's may be reused (no allocation).
        if !repeating { block.fields.reserveCapacity(8) }
        idleSince = nil
    }

    /// One decoded header field, as nghttp2 hands it over (valid only during the call).
    /// Pseudo-headers fill method/path (`:scheme` is dropped, `:authority` becomes `host`); only
    /// fields that are kept become Strings.
    mutating func headerReceived(_ id: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        // Another id: trailers, or a block whose stream is gone; neither is kept.
        guard block.id == id, block.rejection == nil else { return }
        if repeating {
            if memo.matches(repeatedFields, at: repeatedBytes, name: name, value: value) {
                repeatedFields += 1
                repeatedBytes += name.count + value.count
                return
            }
            stopRepeating()
            guard block.rejection == nil else { return }
        }
        fieldReceived(name: name, value: value)
    }

    /// The block in progress no longer repeats the memo: the fields it repeated go through the
    /// rules (and into the recording) as they would have on arrival.
    private mutating func stopRepeating() {
        repeating = false
        block.fields.reserveCapacity(8)
        // A copy: the replay changes `self`.
        let memo = self.memo
        memo.forEachField(upTo: repeatedFields) { name, value in
            fieldReceived(name: name, value: value)
            return block.rejection == nil
        }
    }

    /// One field through the block's limits and HTTP/2's rules.
    private mutating func fieldReceived(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        block.headerBytes += name.count + value.count
        block.headerCount += 1
        if block.headerBytes > limits.maxHeaderListBytes {
            reject(431, "request header list exceeds \(limits.maxHeaderListBytes) bytes")
        } else if block.headerCount > limits.maxHeaderCount {
            reject(431, "request has more than \(limits.maxHeaderCount) header fields")
        } else {
            // Within the limits, so the recording stays bounded by them.
            recording.record(name: name, value: value)
            if name.first == UInt8(ascii: ":") {
                pseudoFieldReceived(name: name, value: value)
            } else {
                regularFieldReceived(name: name, value: value)
            }
        }
    }

    /// Whether `bytes` are exactly `literal`'s.
    static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        guard let base = bytes.baseAddress else { return true }
        return memcmp(base, literal.utf8Start, bytes.count) == 0
    }

    /// Whether `bytes` are exactly `text`'s UTF-8. Labelled apart from the `StaticString` form so
    /// that literals keep resolving to that one (a `memcmp` on the binary's bytes).
    static func equal(_ bytes: UnsafeBufferPointer<UInt8>, string text: String) -> Bool {
        guard bytes.count == text.utf8.count else { return false }
        guard let base = bytes.baseAddress else { return true }
        let same: Bool? = text.utf8.withContiguousStorageIfAvailable { stored in
            guard let storedBase = stored.baseAddress else { return false }
            return memcmp(storedBase, base, bytes.count) == 0
        }
        return same ?? bytes.elementsEqual(text.utf8)
    }

    /// The block's request is malformed or over a limit: it is answered `status` once the block
    /// ends, and nothing more of it is kept.
    mutating func reject(_ status: Int, _ message: String) {
        block.rejection = (status, message)
        block.fields = HTTPFields()
    }

    /// A non-negative decimal number, or nil (empty, other bytes, or beyond Int).
    static func decimal(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var n = 0
        for byte in bytes {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times10, o1) = n.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int(digit))
            if o1 || o2 { return nil }
            n = sum
        }
        return n
    }

    /// The common methods as literals (free to hand out); nil for others.
    static func knownMethod(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        switch bytes.count {
        case 3 where bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "T"): return "GET"
        case 4 where bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "O") && bytes[2] == UInt8(ascii: "S") && bytes[3] == UInt8(ascii: "T"): return "POST"
        default: return nil
        }
    }

    /// Convenience for tests and the upgrade path.
    mutating func headerReceived(_ id: Int32, name: String, value: String) {
        var name = name
        var value = value
        name.withUTF8 { n in value.withUTF8 { v in headerReceived(id, name: n, value: v) } }
    }

    /// The header block ended. With `endStream` the request is complete.
    mutating func headersComplete(_ id: Int32, endStream: Bool, now: Int64) -> Action? {
        guard let i = index(of: id), streams[i].phase == .headers else { return nil }
        streams[i].headersDoneAt = now
        var fresh = false
        if block.id == id {
            if repeating, repeatedFields == memo.count, let repeated = memo.block {
                // The memo's block again: shared, not rebuilt (its checks passed).
                block = repeated
                block.id = id
                repeatedBlocks += 1
            } else {
                if repeating { stopRepeating() }
                fresh = true
            }
            repeating = false
            // Moved in whole (a swap of two entries' words); `block` is left empty.
            swap(&streams[i].head, &block)
        }
        if let rejection = streams[i].head.rejection ?? Self.missingField(seen: streams[i].head.seen) {
            streams[i].phase = .rejected
            return .respondWithError(streamID: id, status: rejection.status, message: rejection.message)
        }
        if let n = streams[i].head.declaredLength, n > limits.maxBodyBytes {
            streams[i].phase = .rejected
            return .respondWithError(streamID: id, status: 413, message: "request body of \(n) bytes exceeds the limit of \(limits.maxBodyBytes)")
        }
        streams[i].phase = .body
        if fresh {
            // Accepted: the block to reuse when the next one repeats it.
            swap(&memo, &recording)
            memo.block = streams[i].head
        }
        if endStream { return endOfBody(at: i) }
        // Only once the limits passed: a refused body is answered with the refusal instead.
        return streams[i].head.expectsContinue ? .sendContinue(streamID: id) : nil
    }

    /// A chunk of request body. Over the body limit: 413 and the rest is dropped.
    mutating func dataReceived(_ id: Int32, _ bytes: UnsafeRawBufferPointer) -> Action? {
        guard let i = index(of: id), streams[i].phase == .body else { return nil }
        if streams[i].body.count + bytes.count > limits.maxBodyBytes {
            streams[i].phase = .rejected
            streams[i].body = []
            return .respondWithError(streamID: id, status: 413, message: "request body exceeds the limit of \(limits.maxBodyBytes) bytes")
        }
        if let declared = streams[i].head.declaredLength, streams[i].body.count + bytes.count > declared {
            streams[i].phase = .rejected
            streams[i].body = []
            return .respondWithError(streamID: id, status: 400, message: "request body is longer than its content-length of \(declared) bytes")
        }
        if streams[i].body.isEmpty {
            // Most bodies come in one DATA frame: one exact copy, not the generic append's
            // growth path (about a third fewer instructions).
            streams[i].body = Array(UnsafeBufferPointer(start: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count))
        } else {
            streams[i].body.append(contentsOf: bytes)
        }
        return nil
    }

    /// END_STREAM on a DATA frame (or trailers).
    mutating func endStreamReceived(_ id: Int32) -> Action? {
        guard let i = index(of: id), streams[i].phase == .body else { return nil }
        return endOfBody(at: i)
    }

    /// The body is complete: dispatched, unless it is shorter than its content-length (RFC 9113
    /// 8.1.1: malformed).
    private mutating func endOfBody(at i: Int) -> Action {
        if let declared = streams[i].head.declaredLength, streams[i].body.count != declared {
            let received = streams[i].body.count
            streams[i].phase = .rejected
            streams[i].body = []
            return .respondWithError(streamID: streams[i].id, status: 400,
                                     message: "request body of \(received) bytes is shorter than its content-length of \(declared)")
        }
        return dispatch(at: i)
    }

    private mutating func dispatch(at i: Int) -> Action {
        streams[i].phase = .dispatched
        return .dispatch(streamID: streams[i].id)
    }

    /// The request of a dispatched stream, moved out of the table (a second call returns nil).
    mutating func takeRequest(_ id: Int32) -> Request? {
        guard let i = index(of: id), streams[i].phase == .dispatched, !streams[i].requestTaken else { return nil }
        streams[i].requestTaken = true
        var method = "", path = "", fields = HTTPFields(), body: [UInt8] = []
        swap(&method, &streams[i].head.method)
        swap(&path, &streams[i].head.path)
        swap(&fields, &streams[i].head.fields)
        swap(&body, &streams[i].body)
        return Request(method: method, target: path, headers: fields, body: body, version: .http2)
    }

    /// nghttp2 closed the stream (answered, reset, or connection gone). Returns whether it was
    /// still waiting for its answer (so the shell cancels the work), and may close a drained connection.
    mutating func streamClosed(_ id: Int32, now: Int64) -> (wasPending: Bool, action: Action?) {
        var pending = false
        // A block cut short (its stream reset) is dropped with its stream.
        if block.id == id {
            block = HeaderBlock()
            repeating = false
        }
        if let i = index(of: id) {
            pending = streams[i].phase == .dispatched
            // The last entry moves into the slot (moved out, not swapped: a swap retained and
            // released every reference the two entries hold).
            let last = streams.removeLast()
            if i < streams.count { streams[i] = last }
            let lastID = ids.removeLast()
            if i < ids.count { ids[i] = lastID }
        }
        if streams.isEmpty { idleSince = now }
        if drain == .finalGoAwaySent && streams.isEmpty {
            drain = .closed
            return (pending, .close(reason: "drained"))
        }
        return (pending, nil)
    }

    /// The responder answered stream `id`. False when the answer is not wanted (already answered,
    /// rejected by a limit, or the stream is gone): the shell drops it.
    mutating func answerSubmitted(_ id: Int32) -> Bool {
        guard let i = index(of: id), streams[i].phase == .dispatched else { return false }
        streams[i].phase = .answered
        return true
    }

    /// The request that came with an h2c Upgrade is stream 1, already complete.
    mutating func adoptUpgradeRequest(_ request: Request, now: Int64) -> Action {
        var stream = Stream(id: 1, openedAt: now)
        stream.phase = .dispatched
        stream.head.method = request.method
        stream.head.path = request.query.isEmpty ? request.path : request.path + "?" + request.query
        stream.head.fields = request.headers
        stream.body = request.body
        append(stream)
        idleSince = nil
        return .dispatch(streamID: 1)
    }

    /// A response went out in full: benign traffic earns back junk budget.
    mutating func responseCompleted() {
        if junkFrames > 0 { junkFrames -= 1 }
    }

    // MARK: Connection events

    /// A frame that does no useful work. Over budget: GOAWAY ENHANCE_YOUR_CALM.
    mutating func junkFrameReceived(kind: String) -> Action? {
        junkFrames += 1
        guard junkFrames > limits.maxJunkFrames, drain != .closed else { return nil }
        drain = .closed
        return .goAwayAndClose(errorCode: Self.enhanceYourCalm, reason: "more than \(limits.maxJunkFrames) junk frames (last: \(kind))")
    }

    mutating func writabilityChanged(writable: Bool, now: Int64) {
        unwritableSince = writable ? nil : (unwritableSince ?? now)
    }

    /// After each write attempt: `blocked` when response bodies are waiting and none of their
    /// bytes could go (the peer's window is 0: the socket stays writable, so writability alone
    /// never sees this peer). Any progress restarts the clock; the write-stall timeout applies.
    mutating func flowControlProgress(blocked: Bool, now: Int64) {
        flowBlockedSince = blocked ? (flowBlockedSince ?? now) : nil
    }

    /// Graceful shutdown: notice now, final GOAWAY on the next tick (one timer period, standing in
    /// for the round trip RFC 9113 section 6.8 asks for), close when the last stream ends.
    mutating func beginDrain() -> [Action] {
        guard drain == .active else { return [] }
        drain = .noticeSent
        return [.sendShutdownNotice]
    }

    /// Periodic timer: timeouts, idle, drain progress.
    mutating func tick(now: Int64) -> [Action] {
        guard drain != .closed else { return [] }
        if let since = unwritableSince, now - since >= limits.writeStallTimeoutNanos {
            drain = .closed
            return [.close(reason: "peer stopped reading for \(limits.writeStallTimeoutNanos / 1_000_000) ms")]
        }
        if let since = flowBlockedSince, now - since >= limits.writeStallTimeoutNanos {
            drain = .closed
            return [.close(reason: "answers waited for the peer's flow-control window for \(limits.writeStallTimeoutNanos / 1_000_000) ms")]
        }
        switch drain {
        case .noticeSent:
            drain = .finalGoAwaySent
            if streams.isEmpty {
                drain = .closed
                return [.sendFinalGoAway, .close(reason: "drained")]
            }
            return [.sendFinalGoAway]
        case .finalGoAwaySent, .closed, .active:
            break
        }
        if let since = idleSince, streams.isEmpty, now - since >= limits.idleTimeoutNanos {
            drain = .closed
            return [.goAwayAndClose(errorCode: Self.noError, reason: "idle for \(limits.idleTimeoutNanos / 1_000_000) ms")]
        }
        var actions: [Action] = []
        for i in streams.indices {
            let stream = streams[i]
            switch stream.phase {
            case .headers where now - stream.openedAt >= limits.headerTimeoutNanos:
                // An unfinished header block blocks the whole connection: no stream can be answered.
                drain = .closed
                return [.goAwayAndClose(errorCode: Self.enhanceYourCalm, reason: "request headers not complete within \(limits.headerTimeoutNanos / 1_000_000) ms")]
            case .body where now - stream.headersDoneAt >= limits.bodyTimeoutNanos:
                streams[i].phase = .rejected
                streams[i].body = []
                actions.append(.respondWithError(streamID: stream.id, status: 408, message: "request body not complete within \(limits.bodyTimeoutNanos / 1_000_000) ms"))
            default:
                break
            }
        }
        return actions
    }
}
