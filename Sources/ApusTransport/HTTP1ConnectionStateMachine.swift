import ApusCore

/// The state of one HTTP/1.x connection: one request at a time (NIO's pipelining handler
/// serialises pipelined requests), header and body limits, slow-request timers, keep-alive and
/// drain.
///
/// Pure state machine: events carry the time in nanoseconds; `Action`s are carried out by
/// `HTTP1ServerHandler`. Not thread-safe: owned by one event loop.
struct HTTP1ConnectionStateMachine {
    enum Action: Equatable {
        case dispatch(Request, keepAlive: Bool)
        /// A transport-generated error answer; the connection closes after it (the rest of the
        /// offending request cannot be skipped safely).
        case respondWithErrorAndClose(status: Int, message: String)
        /// `100 Continue`: the client sent `Expect: 100-continue` and waits for it before sending
        /// the body (curl does for bodies over 1 MB, and waits a second when no answer comes).
        case sendContinue
        case close(reason: String)
    }

    enum State: Equatable {
        /// Between requests. `firstByteAt` is set once bytes of the next request arrived.
        case idle(since: Int64, firstByteAt: Int64?)
        case readingBody(request: Request, keepAlive: Bool, headAt: Int64)
        /// Waiting for the responder's answer.
        case responding(keepAlive: Bool)
        /// An error answer is out; ignore the rest of the request until the connection closes.
        case rejected
        case closed
    }

    let limits: TransportLimits
    private(set) var state: State
    private(set) var draining = false
    private var unwritableSince: Int64?

    init(limits: TransportLimits, now: Int64) {
        self.limits = limits
        self.state = .idle(since: now, firstByteAt: nil)
    }

    /// Raw bytes arrived (before decoding): starts the header timer of the next request.
    mutating func bytesReceived(now: Int64) {
        if case .idle(let since, nil) = state { state = .idle(since: since, firstByteAt: now) }
    }

    mutating func headReceived(method: String, target: String, version: Request.Version, headers: HTTPFields, keepAlive: Bool, now: Int64) -> Action? {
        guard case .idle = state else { return nil }
        var headerBytes = 0
        for field in headers { headerBytes += field.name.utf8.count + field.value.utf8.count }
        if headers.count > limits.maxHeaderCount {
            state = .rejected
            return .respondWithErrorAndClose(status: 431, message: "request has more than \(limits.maxHeaderCount) header fields")
        }
        if headerBytes > limits.maxHeaderListBytes {
            state = .rejected
            return .respondWithErrorAndClose(status: 431, message: "request header list exceeds \(limits.maxHeaderListBytes) bytes")
        }
        if let length = headers["content-length"], let n = Int(length), n > limits.maxBodyBytes {
            state = .rejected
            return .respondWithErrorAndClose(status: 413, message: "request body of \(n) bytes exceeds the limit of \(limits.maxBodyBytes)")
        }
        let request = Request(method: method, target: target, headers: headers, version: version)
        state = .readingBody(request: request, keepAlive: keepAlive && !draining, headAt: now)
        // Only after the limits passed: a refused body is answered with the refusal instead,
        // and the client never sends it. Never to HTTP/1.0 clients (RFC 9110 10.1.1).
        if version == .http1_1, let expect = headers[lowercased: "expect"], Self.isContinue(expect) { return .sendContinue }
        return nil
    }

    /// `100-continue`, compared without regard to case (RFC 9110 10.1.1).
    static func isContinue(_ value: String) -> Bool {
        value.utf8.count == 12 && value.lowercased() == "100-continue"
    }

    mutating func bodyReceived(_ bytes: UnsafeRawBufferPointer) -> Action? {
        guard case .readingBody(var request, let keepAlive, let headAt) = state else { return nil }
        if request.body.count + bytes.count > limits.maxBodyBytes {
            state = .rejected
            return .respondWithErrorAndClose(status: 413, message: "request body exceeds the limit of \(limits.maxBodyBytes) bytes")
        }
        // Move the request out of `state` before appending so the body is not copied.
        state = .rejected
        request.body.append(contentsOf: bytes)
        state = .readingBody(request: request, keepAlive: keepAlive, headAt: headAt)
        return nil
    }

    mutating func endReceived() -> Action? {
        guard case .readingBody(let request, let keepAlive, _) = state else { return nil }
        state = .responding(keepAlive: keepAlive)
        return .dispatch(request, keepAlive: keepAlive)
    }

    /// Whether the answer now being written should keep the connection open.
    var keepAliveForResponse: Bool {
        if case .responding(let keepAlive) = state { return keepAlive && !draining }
        return false
    }

    /// The answer is written. Returns `.close` unless the connection is kept alive.
    mutating func responseSent(now: Int64) -> Action? {
        guard case .responding = state else { return nil }
        if keepAliveForResponse {
            state = .idle(since: now, firstByteAt: nil)
            return nil
        }
        state = .closed
        return .close(reason: draining ? "draining" : "not keep-alive")
    }

    /// Graceful shutdown: an idle connection closes now, a busy one after its answer.
    mutating func beginDrain() -> Action? {
        draining = true
        if case .idle(_, nil) = state {
            state = .closed
            return .close(reason: "draining")
        }
        return nil
    }

    mutating func writabilityChanged(writable: Bool, now: Int64) {
        unwritableSince = writable ? nil : (unwritableSince ?? now)
    }

    mutating func tick(now: Int64) -> Action? {
        if let since = unwritableSince, now - since >= limits.writeStallTimeoutNanos, state != .closed {
            state = .closed
            return .close(reason: "peer stopped reading for \(limits.writeStallTimeoutNanos / 1_000_000) ms")
        }
        switch state {
        case .idle(let since, let firstByteAt):
            if let firstByteAt, now - firstByteAt >= limits.headerTimeoutNanos {
                state = .rejected
                return .respondWithErrorAndClose(status: 408, message: "request headers not complete within \(limits.headerTimeoutNanos / 1_000_000) ms")
            }
            if firstByteAt == nil, now - since >= limits.idleTimeoutNanos {
                state = .closed
                return .close(reason: "idle for \(limits.idleTimeoutNanos / 1_000_000) ms")
            }
        case .readingBody(_, _, let headAt) where now - headAt >= limits.bodyTimeoutNanos:
            state = .rejected
            return .respondWithErrorAndClose(status: 408, message: "request body not complete within \(limits.bodyTimeoutNanos / 1_000_000) ms")
        default:
            break
        }
        return nil
    }
}
