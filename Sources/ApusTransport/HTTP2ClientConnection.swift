import ApusCore
import CNghttp2
import Logging
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A request as the client sends it.
public struct ClientRequest: Sendable {
    public var method: String
    public var path: String
    public var authority: String
    public var headers: HTTPFields
    public var body: [UInt8]
    /// How long to wait for the answer; nil: no limit. When it passes, the stream is reset
    /// (RST_STREAM CANCEL, so the server drops the work) and the request fails with
    /// `deadlineExceeded`; the connection and its other streams go on.
    public var timeout: TimeAmount?

    public init(method: String = "POST", path: String, authority: String = "localhost", headers: HTTPFields = HTTPFields(), body: [UInt8] = [],
                timeout: TimeAmount? = nil) {
        self.method = method
        self.path = path
        self.authority = authority
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// A response as the client received it.
public struct ClientResponse: Sendable {
    public var status: Int
    public var headers: HTTPFields
    public var body: [UInt8]
    /// When the request's HEADERS frame was serialized for the socket, and when the socket read
    /// that completed the answer reached the client (monotonic uptime nanoseconds): the request's
    /// time on the wire and at the server. The send is stamped where h2load stamps it; the close
    /// at the read rather than after parsing it, so the client's own work on the answer (and on
    /// the other answers of that read) is not counted.
    public var sentAtNanos: UInt64 = 0
    public var closedAtNanos: UInt64 = 0

    /// `closedAtNanos - sentAtNanos`, or nil if the send was not seen.
    public var serviceNanos: UInt64? {
        sentAtNanos > 0 && closedAtNanos >= sentAtNanos ? closedAtNanos - sentAtNanos : nil
    }
}

/// One h2c (prior knowledge) client connection on an nghttp2 client session: many concurrent
/// streams, requests beyond the server's MAX_CONCURRENT_STREAMS queued by nghttp2 until a stream
/// frees up.
///
/// Threading: `send` may be called from any thread; it hops to the connection's event loop,
/// where the session lives. Completions run on that event loop (keep them short). If the
/// connection closes, every unanswered request fails once. Thread-safe.
public final class HTTP2ClientConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<HTTP2ClientHandler>

    public typealias Completion = @Sendable (Result<ClientResponse, ApusError>) -> Void

    private init(channel: any Channel, handler: NIOLoopBound<HTTP2ClientHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects and starts the HTTP/2 session (preface and SETTINGS are sent at once).
    ///
    /// A connection that cannot be made throws `.unavailable` "cannot connect to HOST:PORT: reason".
    public static func connect(host: String, port: Int, group: any EventLoopGroup, streamWindow: Int = 16 << 20) async throws -> HTTP2ClientConnection {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port).get()
        } catch {
            // The reason is in the message; NIO's own text (every address tried, its internals) is not.
            throw ApusError(.unavailable, "cannot connect to \(host):\(port): \(reason(error))")
        }
        let handler = try await channel.eventLoop.submit { () -> NIOLoopBound<HTTP2ClientHandler> in
            let handler = HTTP2ClientHandler(streamWindow: streamWindow)
            try channel.pipeline.syncOperations.addHandler(handler)
            return NIOLoopBound(handler, eventLoop: channel.eventLoop)
        }.get()
        return HTTP2ClientConnection(channel: channel, handler: handler)
    }

    /// Why a connection failed, in words: NIO's error lists every address it tried with its
    /// internals ("SingleConnectionFailure(target: [IPv4]...").
    static func reason(_ error: any Error) -> String {
        if let failure = error as? NIOConnectionError {
            let reasons = failure.connectionErrors.map { reason($0.error) }
            if let first = reasons.first, reasons.allSatisfy({ $0 == first }) { return first }
            if !reasons.isEmpty { return reasons.joined(separator: "; ") }
            return failure.dnsAAAAError.map(reason) ?? failure.dnsAError.map(reason) ?? "no address to connect to"
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        return "\(error)"
    }

    public var eventLoop: any EventLoop { channel.eventLoop }

    /// Sends `request`; `completion` runs once with the response or the failure.
    public func send(_ request: ClientRequest, completion: @escaping Completion) {
        if channel.eventLoop.inEventLoop {
            handler.value.submit(request, completion: completion)
        } else {
            let handler = self.handler
            channel.eventLoop.execute { handler.value.submit(request, completion: completion) }
        }
    }

    /// Runs `body` on the connection's event loop with writes held: requests it sends go out
    /// in one socket write at the end instead of one each. Must be called on that event loop.
    public func batchingWrites<T>(_ body: () throws -> T) rethrows -> T {
        let handler = self.handler.value
        handler.holdWrites += 1
        defer {
            handler.holdWrites -= 1
            if handler.holdWrites == 0 { handler.flush() }
        }
        return try body()
    }

    public func send(_ request: ClientRequest) async throws -> ClientResponse {
        try await withCheckedThrowingContinuation { continuation in
            send(request) { continuation.resume(with: $0) }
        }
    }

    /// Whether the connection can still take requests (open, no GOAWAY received).
    public var isUsable: Bool {
        get async {
            guard channel.isActive else { return false }
            let handler = self.handler
            return (try? await channel.eventLoop.submit { !handler.value.goAwayReceived }.get()) ?? false
        }
    }

    public func close() async {
        try? await channel.close()
    }

    /// Starts closing without waiting (for code on the connection's event loop); every request
    /// still unanswered then fails once.
    public func closeNow() {
        channel.close(promise: nil)
    }
}

/// The nghttp2 client session on one channel. Event-loop confined.
final class HTTP2ClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// One request in flight, kept in place in `slots` and updated there by the callbacks (no
    /// object per request, and no reference counting each time a callback touches it).
    struct Stream {
        var status = 0
        var headers = HTTPFields()
        var body: [UInt8] = []
        var requestBody: [UInt8] = []
        var offset = 0
        var sentAt: UInt64 = 0
        /// The stream this slot holds (0: free); a timer or a close checks it, since slots are reused.
        var streamID: Int32 = 0
        /// The request's timeout, armed while it waits.
        var timer: Scheduled<Void>?
        /// nil: the slot is free, or its request timed out and the stream's close will free it.
        var completion: HTTP2ClientConnection.Completion?
    }

    /// The slot a callback is about: the last one looked up when it is the same stream (a
    /// response's headers, data and close arrive together), else the one nghttp2 keeps as the
    /// stream's user data. Stream ids are odd, so 0 means none.
    private var recentID: Int32 = 0
    private var recentSlot = 0

    private func slotIndex(_ id: Int32) -> Int? {
        if id == recentID { return recentSlot }
        guard let slot = slot(of: id), slots[slot].completion != nil else { return nil }
        recentID = id
        recentSlot = slot
        return slot
    }

    /// The slot of stream `id`: nghttp2 hands back the user data given at submit (slot + 1,
    /// as a pointer's bits), so no table of ours is hashed per callback.
    private func slot(of id: Int32) -> Int? {
        guard let session, let data = nghttp2_session_get_stream_user_data(session, id) else { return nil }
        let slot = Int(bitPattern: data) - 1
        return slots.indices.contains(slot) ? slot : nil
    }

    private var session: OpaquePointer?
    /// Requests in flight, by slot; freed slots are reused, so the table is as long as the most
    /// requests ever in flight at once. Requests nghttp2 never opened a stream for (held back
    /// by GOAWAY) stay until teardown fails them.
    private var slots: [Stream] = []
    private var freeSlots: [Int] = []
    /// When the socket read being parsed reached the handler (0 outside `channelRead`): answers
    /// it completes are stamped with it.
    private var readAt: UInt64 = 0
    private var context: ChannelHandlerContext?
    private let streamWindow: Int
    private(set) var goAwayReceived = false
    /// Repeated response header names and values, made into strings once.
    private var strings = HeaderStringCache()
    /// Reused for every request's header block (it keeps its memory).
    private let headerScratch = NGHTTP2HeaderList()
    /// What `headerScratch` was built from: a request like the last one (a load generator's
    /// usually is, down to the same string storage, which compares at once) reuses the block.
    private var scratchKey: (method: String, path: String, authority: String, headers: HTTPFields, bodyCount: Int)?
    /// While > 0 (inside `channelRead`, or `batchingWrites`), submits do not write: everything
    /// queued goes out in one write when the hold ends. A write syscall per request was 40% of
    /// a load generator's time.
    var holdWrites = 0
    private var failure: ApusError?
    /// Completions recorded by callbacks, run after `mem_recv` returns: a completion may send the
    /// next request, which must not re-enter the session from inside its callback.
    private var finished: [(HTTP2ClientConnection.Completion, Result<ClientResponse, ApusError>)] = []

    init(streamWindow: Int) {
        self.streamWindow = streamWindow
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        do {
            try createSession()
        } catch {
            failure = error as? ApusError ?? ApusError(.internalError, "\(error)")
            context.close(promise: nil)
            return
        }
        flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        teardown(ApusError(.unavailable, "the connection was closed"))
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        teardown(failure ?? ApusError(.unavailable, "the server closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failure = ApusError(.unavailable, "connection error: \(error)")
        context.close(promise: nil)
    }

    private func teardown(_ error: ApusError) {
        runFinished()
        let pending = slots.compactMap(\.completion)
        for slot in slots { slot.timer?.cancel() }
        slots.removeAll()
        freeSlots.removeAll()
        recentID = 0
        if let session {
            nghttp2_session_del(session)
            self.session = nil
        }
        for completion in pending { completion(.failure(error)) }
    }

    private func createSession() throws {
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
            throw ApusError(.internalError, "nghttp2_session_callbacks_new failed")
        }
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_header_callback(callbacks, clientOnHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, clientOnFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, clientOnDataChunkRecv)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, clientOnStreamClose)
        nghttp2_session_callbacks_set_before_frame_send_callback(callbacks, clientBeforeFrameSend)
        var created: OpaquePointer?
        let rv = nghttp2_session_client_new(&created, callbacks, Unmanaged.passUnretained(self).toOpaque())
        guard rv == 0, let created else { throw ApusError(.internalError, "nghttp2_session_client_new failed: \(HTTP2ServerHandler.errorString(rv))") }
        session = created
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(clamping: streamWindow)),
        ]
        let srv = nghttp2_submit_settings(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        guard srv == 0 else { throw ApusError(.internalError, "nghttp2_submit_settings failed: \(HTTP2ServerHandler.errorString(srv))") }
        let wrv = nghttp2_session_set_local_window_size(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(clamping: max(streamWindow, 1 << 20) * 4))
        guard wrv == 0 else { throw ApusError(.internalError, "nghttp2_session_set_local_window_size failed: \(HTTP2ServerHandler.errorString(wrv))") }
    }

    func submit(_ request: ClientRequest, completion: @escaping HTTP2ClientConnection.Completion) {
        guard let session, !goAwayReceived else {
            completion(.failure(failure ?? ApusError(.unavailable, goAwayReceived ? "the server is shutting down this connection (GOAWAY)" : "the connection is closed")))
            return
        }
        if let key = scratchKey, key.bodyCount == request.body.count, key.method == request.method, key.path == request.path,
           key.authority == request.authority, key.headers == request.headers {
            // nghttp2 copies the block at each submit, so the same one serves again.
        } else {
            headerScratch.removeAll()
            headerScratch.append(":method", request.method)
            headerScratch.append(":scheme", "http")
            headerScratch.append(":authority", request.authority)
            headerScratch.append(":path", request.path)
            if !request.body.isEmpty { headerScratch.append(literal: "content-length", decimal: request.body.count) }
            for field in request.headers where !Self.isSetByClient(field.name) {
                headerScratch.append(field.name, field.value)
            }
            scratchKey = (request.method, request.path, request.authority, request.headers, request.body.count)
        }
        let hasBody = !request.body.isEmpty
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = slots.count
            slots.append(Stream())
        }
        let userData = UnsafeMutableRawPointer(bitPattern: slot + 1)
        let streamID = headerScratch.withNV { nv, count in
            if hasBody {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: clientReadBody)
                return nghttp2_submit_request(session, nil, nv, count, &provider, userData)
            }
            return nghttp2_submit_request(session, nil, nv, count, nil, userData)
        }
        guard streamID > 0 else {
            freeSlots.append(slot)
            completion(.failure(ApusError(.internalError, "nghttp2_submit_request failed: \(HTTP2ServerHandler.errorString(streamID))")))
            return
        }
        slots[slot].requestBody = request.body
        slots[slot].headers.reserveCapacity(4)
        slots[slot].streamID = streamID
        slots[slot].completion = completion
        if let timeout = request.timeout, let loop = context?.eventLoop {
            slots[slot].timer = loop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                expire(slot: slot, streamID: streamID, after: timeout)
            }
        }
        if holdWrites == 0 { flush() }
    }

    /// A request's timeout passed: it fails now, and its stream is reset so the server drops
    /// the work. The slot stays taken (with no completion, so late frames are ignored) until
    /// nghttp2 closes the stream: freed earlier, it could be reused while nghttp2 still maps
    /// the old stream to it.
    private func expire(slot: Int, streamID: Int32, after timeout: TimeAmount) {
        guard slots.indices.contains(slot), slots[slot].streamID == streamID, let completion = slots[slot].completion else { return }
        slots[slot].completion = nil
        slots[slot].timer = nil
        if recentID == streamID { recentID = 0 }
        if let session {
            // Non-zero: the stream is already gone (closed meanwhile); its slot is freed here then.
            if nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_CANCEL.rawValue) != 0 {
                slots[slot] = Stream()
                freeSlots.append(slot)
            }
            if holdWrites == 0 { flush() }
        }
        completion(.failure(ApusError(.deadlineExceeded, "no answer within \(timeout.nanoseconds / 1_000_000) ms")))
    }

    /// Fields the client writes itself (content-length from the body; host and connection are not
    /// HTTP/2 fields). Lengths first: this runs for every field of every request.
    static func isSetByClient(_ name: String) -> Bool {
        switch name.utf8.count {
        case 14: return name == "content-length"
        case 4: return name == "host"
        case 10: return name == "connection"
        default: return false
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        readAt = NIODeadline.now().uptimeNanoseconds
        defer { readAt = 0 }
        let buffer = unwrapInboundIn(data)
        let rv = buffer.withUnsafeReadableBytes { bytes -> Int in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
            return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        holdWrites += 1
        runFinished()
        holdWrites -= 1
        if rv < 0 {
            failure = ApusError(.unavailable, "HTTP/2 protocol error from the server: \(HTTP2ServerHandler.errorString(rv))")
            context.close(promise: nil)
            return
        }
        // Written now, flushed once in channelReadComplete: one syscall for all the answers of a read.
        flush(now: false)
    }

    private func runFinished() {
        // Swapped out, run, then kept for reuse: completions may append more.
        var batch: [(HTTP2ClientConnection.Completion, Result<ClientResponse, ApusError>)] = []
        while !finished.isEmpty {
            swap(&batch, &finished)
            for (completion, result) in batch { completion(result) }
            batch.removeAll(keepingCapacity: true)
        }
        if finished.capacity == 0 { swap(&batch, &finished) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
    }

    /// Writes what nghttp2 has queued; `now: false` leaves the flush to `channelReadComplete`.
    func flush(now: Bool = true) {
        guard let session, let context else { return }
        let buffer: ByteBuffer?
        switch NGHTTP2Output.collect(session, allocator: context.channel.allocator) {
        case .success(let bytes): buffer = bytes
        case .failure(let error):
            failure = ApusError(.internalError, "nghttp2_session_mem_send failed: \(error)")
            context.close(promise: nil)
            return
        }
        if let buffer {
            if now { context.writeAndFlush(NIOAny(buffer), promise: nil) } else { context.write(NIOAny(buffer), promise: nil) }
        } else if now {
            context.flush()
        }
    }

    // MARK: Callback targets (record only; never re-enter the session)

    fileprivate func onHeader(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        // ":status" is the only pseudo-header of a response (nghttp2 rejects others) and comes first.
        guard let i = slotIndex(streamID) else { return }
        if name.count == 7, name.first == UInt8(ascii: ":") {
            slots[i].status = Self.parseStatus(value)
            return
        }
        // nghttp2 rejects upper-case names in HTTP/2, so they go in as they are.
        slots[i].headers.appendLowercased(name: strings.name(name), value: strings.string(value))
    }

    /// Three ASCII digits (what nghttp2 lets through as :status); 0 for anything else.
    static func parseStatus(_ value: UnsafeBufferPointer<UInt8>) -> Int {
        guard value.count == 3 else { return 0 }
        var status = 0
        for byte in value {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return 0 }
            status = status * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return status
    }

    fileprivate func onData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let i = slotIndex(streamID) else { return }
        slots[i].body.append(contentsOf: bytes)
    }

    fileprivate func onRequestHeadersSending(streamID: Int32) {
        guard let i = slotIndex(streamID) else { return }
        slots[i].sentAt = NIODeadline.now().uptimeNanoseconds
    }

    fileprivate func onGoAway() {
        goAwayReceived = true
    }

    fileprivate func onStreamClose(streamID: Int32, errorCode: UInt32) {
        // Found without requiring a completion: a timed-out request's slot is freed here too.
        guard let i = streamID == recentID ? recentSlot : slot(of: streamID), slots[i].streamID == streamID else { return }
        if recentID == streamID { recentID = 0 }
        // Moved out, leaving a free slot behind (a swap: nothing is copied or retained).
        var stream = Stream()
        swap(&stream, &slots[i])
        freeSlots.append(i)
        stream.timer?.cancel()
        guard let completion = stream.completion else { return }
        if errorCode == 0, stream.status > 0 {
            let response = ClientResponse(status: stream.status, headers: stream.headers, body: stream.body,
                                          sentAtNanos: stream.sentAt, closedAtNanos: readAt > 0 ? readAt : NIODeadline.now().uptimeNanoseconds)
            finished.append((completion, .success(response)))
        } else if errorCode == NGHTTP2_REFUSED_STREAM.rawValue {
            finished.append((completion, .failure(ApusError(.unavailable, "the server refused the stream (REFUSED_STREAM); retry", retryAfterSeconds: 0))))
        } else {
            finished.append((completion, .failure(ApusError(.unavailable, "the stream was reset (error code \(errorCode))"))))
        }
    }

    fileprivate func readBody(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let i = slotIndex(streamID) else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        let offset = slots[i].offset
        let n = min(length, slots[i].requestBody.count - offset)
        slots[i].requestBody.withUnsafeBufferPointer { src in
            if let base = src.baseAddress, n > 0 { buffer.update(from: base + offset, count: n) }
        }
        slots[i].offset += n
        if slots[i].offset >= slots[i].requestBody.count {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            slots[i].requestBody = []
        }
        return n
    }
}

// MARK: - nghttp2 client callbacks

/// Runs `body` with the handler behind `user_data`, borrowed rather than retained (it owns the
/// session, so it outlives every callback; see the server's `withHandler`).
private func withClientHandler<R>(_ userData: UnsafeMutableRawPointer?, otherwise: R, _ body: (HTTP2ClientHandler) -> R) -> R {
    guard let userData else { return otherwise }
    return Unmanaged<HTTP2ClientHandler>.fromOpaque(userData)._withUnsafeGuaranteedRef(body)
}

private func clientOnHeader(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?,
    _ name: UnsafePointer<UInt8>?, _ nameLength: Int, _ value: UnsafePointer<UInt8>?, _ valueLength: Int,
    _ flags: UInt8, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame else { return 0 }
    withClientHandler(userData, otherwise: ()) {
        $0.onHeader(streamID: frame.pointee.hd.stream_id, name: UnsafeBufferPointer(start: name, count: nameLength),
                    value: UnsafeBufferPointer(start: value, count: valueLength))
    }
    return 0
}

private func clientOnFrameRecv(_ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let frame, UInt32(frame.pointee.hd.type) == NGHTTP2_GOAWAY.rawValue else { return 0 }
    withClientHandler(userData, otherwise: ()) { $0.onGoAway() }
    return 0
}

private func clientBeforeFrameSend(_ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let frame else { return 0 }
    if UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue, frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
        withClientHandler(userData, otherwise: ()) { $0.onRequestHeadersSending(streamID: frame.pointee.hd.stream_id) }
    }
    return 0
}

private func clientOnDataChunkRecv(
    _ session: OpaquePointer?, _ flags: UInt8, _ streamID: Int32, _ data: UnsafePointer<UInt8>?, _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    withClientHandler(userData, otherwise: ()) { $0.onData(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length)) }
    return 0
}

private func clientOnStreamClose(_ session: OpaquePointer?, _ streamID: Int32, _ errorCode: UInt32, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    withClientHandler(userData, otherwise: ()) { $0.onStreamClose(streamID: streamID, errorCode: errorCode) }
    return 0
}

private func clientReadBody(
    _ session: OpaquePointer?, _ streamID: Int32, _ buffer: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?, _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    return withClientHandler(userData, otherwise: Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)) { $0.readBody(streamID: streamID, into: buffer, length: length, flags: flags) }
}
