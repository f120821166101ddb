import ApusCore

/// The application-side state of one HTTP/2 connection: its stream table, limits, timers, junk
/// budget and drain. nghttp2 owns framing and flow control; this owns every decision nghttp2 does
/// not make (see the brief: nghttp2 bounds neither header lists, junk frames nor slow peers).
///
/// A pure state machine: events come in with the current time in nanoseconds, decisions come out
/// as `Action`s the I/O shell (`HTTP2ServerHandler`) carries out. Not thread-safe: owned by one
/// event loop.
struct HTTP2ConnectionStateMachine {
    enum Action: Equatable {
        /// A complete, valid request: hand it to the responder.
        case dispatch(streamID: Int32, request: Request)
        /// Answer the stream with a transport-generated error (431, 413, 408).
        case respondWithError(streamID: Int32, status: Int, message: String)
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
        var phase: Phase = .headers
        var openedAt: Int64
        var headersDoneAt: Int64 = 0
        var headerBytes = 0
        var headerCount = 0
        var method = ""
        var path = ""
        var fields = HTTPFields()
        var body: [UInt8] = []
        var rejection: (status: Int, message: String)?
    }

    enum DrainState: Equatable { case active, noticeSent, finalGoAwaySent, closed }

    // NGHTTP2 error codes, repeated here so this type stays free of the C module.
    static let noError: UInt32 = 0
    static let protocolError: UInt32 = 1
    static let enhanceYourCalm: UInt32 = 0xb

    let limits: TransportLimits
    private(set) var streams: [Int32: Stream] = [:]
    private(set) var junkFrames = 0
    private(set) var drain: DrainState = .active
    private var idleSince: Int64?
    private var unwritableSince: Int64?

    init(limits: TransportLimits, now: Int64) {
        self.limits = limits
        self.idleSince = now
    }

    // MARK: Stream events

    mutating func streamOpened(_ id: Int32, now: Int64) {
        streams[id] = Stream(openedAt: now)
        idleSince = nil
    }

    /// One decoded header field. Pseudo-headers fill method/path; `:authority` becomes `host`.
    mutating func headerReceived(_ id: Int32, name: String, value: String) {
        guard var stream = streams[id], stream.phase == .headers, stream.rejection == nil else { return }
        stream.headerBytes += name.utf8.count + value.utf8.count
        stream.headerCount += 1
        if stream.headerBytes > limits.maxHeaderListBytes {
            stream.rejection = (431, "request header list exceeds \(limits.maxHeaderListBytes) bytes")
            stream.fields = HTTPFields()
        } else if stream.headerCount > limits.maxHeaderCount {
            stream.rejection = (431, "request has more than \(limits.maxHeaderCount) header fields")
            stream.fields = HTTPFields()
        } else if name.utf8.first == UInt8(ascii: ":") {
            switch name {
            case ":method": stream.method = value
            case ":path": stream.path = value
            case ":authority": stream.fields.add(name: "host", value: value)
            default: break
            }
        } else {
            stream.fields.add(name: name, value: value)
        }
        streams[id] = stream
    }

    /// The header block ended. With `endStream` the request is complete.
    mutating func headersComplete(_ id: Int32, endStream: Bool, now: Int64) -> Action? {
        guard var stream = streams[id], stream.phase == .headers else { return nil }
        stream.headersDoneAt = now
        if let rejection = stream.rejection {
            stream.phase = .rejected
            streams[id] = stream
            return .respondWithError(streamID: id, status: rejection.status, message: rejection.message)
        }
        if let length = stream.fields["content-length"], let n = Int(length), n > limits.maxBodyBytes {
            stream.phase = .rejected
            streams[id] = stream
            return .respondWithError(streamID: id, status: 413, message: "request body of \(n) bytes exceeds the limit of \(limits.maxBodyBytes)")
        }
        stream.phase = .body
        streams[id] = stream
        return endStream ? dispatch(id) : nil
    }

    /// A chunk of request body. Over the body limit: 413 and the rest is dropped.
    mutating func dataReceived(_ id: Int32, _ bytes: UnsafeRawBufferPointer) -> Action? {
        guard var stream = streams[id], stream.phase == .body else { return nil }
        if stream.body.count + bytes.count > limits.maxBodyBytes {
            stream.phase = .rejected
            stream.body = []
            streams[id] = stream
            return .respondWithError(streamID: id, status: 413, message: "request body exceeds the limit of \(limits.maxBodyBytes) bytes")
        }
        stream.body.append(contentsOf: bytes)
        streams[id] = stream
        return nil
    }

    /// END_STREAM on a DATA frame (or trailers).
    mutating func endStreamReceived(_ id: Int32) -> Action? {
        guard let stream = streams[id], stream.phase == .body else { return nil }
        return dispatch(id)
    }

    private mutating func dispatch(_ id: Int32) -> Action? {
        guard var stream = streams[id] else { return nil }
        stream.phase = .dispatched
        let request = Request(method: stream.method, target: stream.path, headers: stream.fields, body: stream.body, version: .http2)
        stream.body = []
        stream.fields = HTTPFields()
        streams[id] = stream
        return .dispatch(streamID: id, request: request)
    }

    /// nghttp2 closed the stream (answered, reset, or connection gone). Returns whether it was
    /// still waiting for its answer (so the shell cancels the work), and may close a drained connection.
    mutating func streamClosed(_ id: Int32, now: Int64) -> (wasPending: Bool, action: Action?) {
        let removed = streams.removeValue(forKey: id)
        if streams.isEmpty { idleSince = now }
        let pending = removed?.phase == .dispatched
        if drain == .finalGoAwaySent && streams.isEmpty {
            drain = .closed
            return (pending, .close(reason: "drained"))
        }
        return (pending, nil)
    }

    /// The responder answered stream `id`. False when the answer is not wanted (already answered,
    /// rejected by a limit, or the stream is gone): the shell drops it.
    mutating func answerSubmitted(_ id: Int32) -> Bool {
        guard streams[id]?.phase == .dispatched else { return false }
        streams[id]?.phase = .answered
        return true
    }

    /// The request that came with an h2c Upgrade is stream 1, already complete.
    mutating func adoptUpgradeRequest(_ request: Request, now: Int64) -> Action {
        var stream = Stream(openedAt: now)
        stream.phase = .dispatched
        streams[1] = stream
        idleSince = nil
        return .dispatch(streamID: 1, request: request)
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
        for (id, stream) in streams.sorted(by: { $0.key < $1.key }) {
            switch stream.phase {
            case .headers where now - stream.openedAt >= limits.headerTimeoutNanos:
                // An unfinished header block blocks the whole connection: no stream can be answered.
                drain = .closed
                return [.goAwayAndClose(errorCode: Self.enhanceYourCalm, reason: "request headers not complete within \(limits.headerTimeoutNanos / 1_000_000) ms")]
            case .body where now - stream.headersDoneAt >= limits.bodyTimeoutNanos:
                streams[id]?.phase = .rejected
                streams[id]?.body = []
                actions.append(.respondWithError(streamID: id, status: 408, message: "request body not complete within \(limits.bodyTimeoutNanos / 1_000_000) ms"))
            default:
                break
            }
        }
        return actions
    }
}
