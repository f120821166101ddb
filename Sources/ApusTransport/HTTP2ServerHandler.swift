import ApusCore
import CNghttp2
import Logging
import NIOCore

/// The I/O shell around one nghttp2 server session: feeds it whole socket reads, writes what it
/// produces, and carries out `HTTP2ConnectionStateMachine`'s decisions.
///
/// Threading: lives on its channel's event loop; responders may answer from any thread through
/// the `ResponseWriter`, which hops back to this loop. nghttp2 callbacks only record events (they
/// never re-enter the session); the actions run after `nghttp2_session_mem_recv` returns.
final class HTTP2ServerHandler: ChannelDuplexHandler, RemovableChannelHandler, LoopResponseTarget {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What an h2c Upgrade hands over: the decoded HTTP2-Settings payload and the request.
    struct UpgradeRequest {
        var settingsPayload: [UInt8]
        var request: Request
    }

    private let responder: any Responder
    private let limits: TransportLimits
    private let logger: Logger
    private let stats: TransportStats
    private var upgrade: UpgradeRequest?

    private var session: OpaquePointer?
    private var machine: HTTP2ConnectionStateMachine
    private var pending: [HTTP2ConnectionStateMachine.Action] = []
    /// Per-stream I/O state (the request's cancellation handle, the answer's unsent body), in no
    /// particular order; a small array for the same reason as the state machine's stream table.
    private var streamIO: [StreamIO] = []
    /// Reused for every response's header block (it keeps its memory).
    private let headerScratch = NGHTTP2HeaderList()
    /// What `headerScratch` holds: the next answer repacks only the fields after those it shares.
    private var answerHead = ResponseHeadMemo()
    /// The time of the current read or tick, read once per event rather than once per frame.
    private var now: Int64
    private var context: ChannelHandlerContext?
    private var timer: RepeatedTask?
    private var remoteAddress = "unknown"
    /// True while actions run, so answers given synchronously are flushed once at the end.
    private var batching = false
    /// Response body bytes handed to nghttp2 so far (flow-control progress).
    private var bodyBytesSent = 0
    /// An error GOAWAY left (nghttp2's or ours): no second one is sent.
    private var goAwaySent = false
    /// We submitted an error GOAWAY ourselves (so the one nghttp2 sends is not the peer's fault).
    private var ownGoAwaySubmitted = false
    /// This connection was counted in `stats.protocolErrors` (once at most).
    private var protocolErrorCounted = false
    /// The junk budget tripped inside a callback (mem_recv was stopped on purpose).
    private var junkTripped = false
    /// Streams counted in `stats` as open on this connection.
    private var liveStreams = 0
    /// Streams opened and closed since the shared counters were last updated: they are updated
    /// once per flush, not per stream (three atomic operations per request saved).
    private var unpublishedOpened = 0
    private var unpublishedClosed = 0
    /// Inside `channelRead`: answers wait for its single flush at the end.
    private var holdingFlush = false
    private var readPending = false
    private var closing = false

    struct StreamIO {
        var id: Int32
        var context: RequestContext?
        var body: [UInt8] = []
        var offset = 0
    }

    private func ioIndex(_ id: Int32) -> Int? {
        var i = streamIO.count - 1
        while i >= 0 {
            if streamIO[i].id == id { return i }
            i -= 1
        }
        return nil
    }

    init(responder: any Responder, limits: TransportLimits, logger: Logger, stats: TransportStats, upgrade: UpgradeRequest? = nil) {
        self.responder = responder
        self.limits = limits
        self.logger = logger
        self.stats = stats
        self.upgrade = upgrade
        let now = Self.now()
        self.now = now
        self.machine = HTTP2ConnectionStateMachine(limits: limits, now: now)
    }

    /// The monotonic clock of `RequestContext.arrivalNanos` (and of the batch queues), read
    /// once per socket read: requests are stamped with their read's time.
    static func now() -> Int64 { Int64(clamping: MonotonicClock.nanoseconds()) }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        remoteAddress = context.channel.remoteAddress?.peerText ?? "unknown"
        do {
            try createSession()
        } catch {
            logger.error("cannot create HTTP/2 session", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        let tick = TimeAmount.nanoseconds(limits.timerTickNanos)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            loopBound.value.onTick()
        }
        if let upgrade {
            self.upgrade = nil
            pending.append(machine.adoptUpgradeRequest(upgrade.request, now: Self.now()))
            runPendingActions()
        }
        flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        teardown()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        teardown()
        context.fireChannelInactive()
    }

    private func teardown() {
        timer?.cancel()
        timer = nil
        sink?.detach()
        sink = nil
        for io in streamIO { io.context?.cancel() }
        streamIO.removeAll()
        // nghttp2_session_del does not report the streams it drops: take them off the gauge here.
        publishStreamCounts()
        stats.streamsClosed(liveStreams)
        liveStreams = 0
        if let session {
            nghttp2_session_del(session)
            self.session = nil
        }
    }

    private func createSession() throws {
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
            throw ApusError(.internalError, "nghttp2_session_callbacks_new failed")
        }
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, h2OnBeginFrame)
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, h2OnBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, h2OnHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, h2OnFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, h2OnDataChunkRecv)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, h2OnStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, h2OnFrameSend)
        // Unknown frame types are skipped by nghttp2 without any callback unless registered as
        // user extensions; registered, they reach on_begin_frame and count as junk. Payloads are
        // dropped (chunk callback does nothing, unpack cancels the frame).
        nghttp2_session_callbacks_set_on_extension_chunk_recv_callback(callbacks, h2OnExtensionChunk)
        nghttp2_session_callbacks_set_unpack_extension_callback(callbacks, h2UnpackExtension)

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else {
            throw ApusError(.internalError, "nghttp2_option_new failed")
        }
        defer { nghttp2_option_del(option) }
        // Bounds nghttp2 offers itself; the rest lives in the state machine.
        nghttp2_option_set_max_outbound_ack(option, 1000)
        nghttp2_option_set_max_settings(option, 32)
        nghttp2_option_set_max_continuations(option, 16)
        // Above the junk budget (which counts resets too), so a reset storm meets our
        // ENHANCE_YOUR_CALM first and nghttp2's own INTERNAL_ERROR GOAWAY never follows it.
        let resetBurst = limits.maxJunkFrames > 0 ? UInt64(limits.maxJunkFrames) + 100 : 1000
        nghttp2_option_set_stream_reset_rate_limit(option, resetBurst, 33)
        nghttp2_option_set_max_deflate_dynamic_table_size(option, 4096)
        // RFC 7540 priorities are deprecated (RFC 9113 5.3) and unused here: nghttp2 then keeps
        // no dependency tree and no closed streams for it (work per stream on every request).
        nghttp2_option_set_no_closed_streams(option, 1)
        // HTTP/2's message rules are checked by HTTP2ConnectionStateMachine as the fields arrive
        // (see its MessageRules): nghttp2's own pass over the same fields cost ~2k instructions
        // a request. Malformed requests are answered 400 naming the field.
        nghttp2_option_set_no_http_messaging(option, 1)
        for type in UInt8(10)...UInt8(255) { nghttp2_option_set_user_recv_extension_type(option, type) }

        var created: OpaquePointer?
        let rv = nghttp2_session_server_new2(&created, callbacks, Unmanaged.passUnretained(self).toOpaque(), option)
        guard rv == 0, let created else {
            throw ApusError(.internalError, "nghttp2_session_server_new2 failed: \(Self.errorString(rv))")
        }
        session = created

        if let upgrade {
            let rv = upgrade.settingsPayload.withUnsafeBufferPointer { payload in
                nghttp2_session_upgrade2(created, payload.baseAddress, payload.count, upgrade.request.method == "HEAD" ? 1 : 0, nil)
            }
            guard rv == 0 else { throw ApusError(.badRequest, "invalid HTTP2-Settings: \(Self.errorString(rv))") }
        }

        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(limits.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(limits.streamWindowBytes)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(limits.maxHeaderListBytes)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES.rawValue), value: 1),
        ]
        let srv = nghttp2_submit_settings(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        guard srv == 0 else { throw ApusError(.internalError, "nghttp2_submit_settings failed: \(Self.errorString(srv))") }
        let wrv = nghttp2_session_set_local_window_size(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(clamping: limits.connectionWindowBytes))
        guard wrv == 0 else { throw ApusError(.internalError, "nghttp2_session_set_local_window_size failed: \(Self.errorString(wrv))") }
    }

    static func errorString(_ code: some BinaryInteger) -> String {
        guard let message = nghttp2_strerror(Int32(clamping: code)) else { return "error \(code)" }
        return String(cString: message)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Requests of every socket read in this loop tick reach the batchers together, released
        // when the tick's I/O is done: one batch across connections, one hand-off to the workers,
        // or inline when cheap (DynamicBatcher). Their answers come then, each connection flushed
        // once per release (`answer`); what this read produced itself goes out now.
        holdingFlush = true
        let loop = context.eventLoop
        WakeupCoalescer.batchUntilTaskRuns({ loop.execute($0) }) { process(context: context, data: data) }
        holdingFlush = false
        flush()
    }

    private func process(context: ChannelHandlerContext, data: NIOAny) {
        guard let session, !closing else { return }
        now = Self.now()
        let buffer = unwrapInboundIn(data)
        // One whole socket read per call: Debian's CONTINUATION patch counts per call.
        let rv = buffer.withUnsafeReadableBytes { bytes -> Int in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
            return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        if rv < 0 {
            // A tripped junk budget stops mem_recv on purpose (onBeginFrame): its GOAWAY is pending.
            let flood = junkTripped || rv == Int(NGHTTP2_ERR_FLOODED.rawValue) || rv == Int(NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue)
            if !junkTripped {
                logger.debug("closing HTTP/2 connection after a protocol error", metadata: ["error": "\(Self.errorString(rv))", "peer": "\(remoteAddress)"])
                countProtocolError()
            }
            // nghttp2 may have queued a GOAWAY explaining why (and we may have one of our own):
            // send it. Some fatal errors (a CONTINUATION flood) queue none: announce the close
            // ourselves (RFC 9113 5.4.1), once.
            runPendingActions()
            flush()
            if !goAwaySent {
                if flood { stats.calmGoAways.add(1) }
                writeRawGoAway(errorCode: flood ? HTTP2ConnectionStateMachine.enhanceYourCalm : NGHTTP2_PROTOCOL_ERROR.rawValue)
            }
            closeAfterFlush()
            return
        }
        runPendingActions()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        now = Self.now()
        machine.writabilityChanged(writable: writable, now: now)
        if writable {
            flush()
            if readPending {
                readPending = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Backpressure: while the peer is not taking our output we stop reading its input, so it
    /// cannot make us queue more (responses, PING/SETTINGS acks).
    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TransportDrainEvent {
            pending.append(contentsOf: machine.beginDrain())
            runPendingActions()
            flush()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("HTTP/2 connection error", metadata: ["error": "\(error)", "peer": "\(remoteAddress)"])
        context.close(promise: nil)
    }

    private func onTick() {
        now = Self.now()
        pending.append(contentsOf: machine.tick(now: now))
        runPendingActions()
        flush()
    }

    // MARK: Events from the nghttp2 callbacks (record only; never touch the session here)

    fileprivate func onBeginFrame(type: UInt8, flags: UInt8, length: Int) -> Int32 {
        let junk: String?
        switch UInt32(type) {
        case NGHTTP2_DATA.rawValue:
            junk = (length == 0 && flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) == 0) ? "empty DATA" : nil
        case NGHTTP2_PRIORITY.rawValue: junk = "PRIORITY"
        case NGHTTP2_RST_STREAM.rawValue: junk = "RST_STREAM"
        case NGHTTP2_SETTINGS.rawValue: junk = flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 ? "SETTINGS" : nil
        case NGHTTP2_PING.rawValue: junk = flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 ? "PING" : nil
        case NGHTTP2_HEADERS.rawValue, NGHTTP2_CONTINUATION.rawValue, NGHTTP2_WINDOW_UPDATE.rawValue,
             NGHTTP2_GOAWAY.rawValue, NGHTTP2_PUSH_PROMISE.rawValue:
            junk = nil
        default: junk = "unknown frame type \(type)"
        }
        if let junk {
            stats.junkFrames.add(1)
            if let action = machine.junkFrameReceived(kind: junk) {
                // Runs once mem_recv returns (no re-entry from a callback). Failing the callback
                // makes mem_recv stop at this frame: the rest of the flood is not processed, and
                // the GOAWAY's last stream id is the last stream actually seen.
                pending.append(action)
                junkTripped = true
                return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue
            }
        }
        return 0
    }

    /// Error GOAWAYs only: the drain's shutdown notice and final GOAWAY (NO_ERROR) may still be
    /// followed by an error one with a last stream id that does not grow.
    fileprivate func onGoAwaySent(errorCode: UInt32) {
        guard errorCode != NGHTTP2_NO_ERROR.rawValue else { return }
        // An error GOAWAY we did not ask for: nghttp2 found the peer breaking the protocol.
        if !ownGoAwaySubmitted { countProtocolError() }
        goAwaySent = true
    }

    /// Counts this connection in `stats.protocolErrors`, once however many ways it fails.
    private func countProtocolError() {
        guard !protocolErrorCounted else { return }
        protocolErrorCounted = true
        stats.protocolErrors.add(1)
    }

    /// A GOAWAY written below nghttp2, for fatal errors after which nghttp2 sends nothing.
    private func writeRawGoAway(errorCode: UInt32) {
        guard let session, let context, !goAwaySent else { return }
        let last = UInt32(bitPattern: nghttp2_session_get_last_proc_stream_id(session)) & 0x7FFF_FFFF
        var buffer = context.channel.allocator.buffer(capacity: 17)
        // Frame header: length 8, type GOAWAY (7), no flags, stream 0.
        buffer.writeBytes([0, 0, 8, 7, 0, 0, 0, 0, 0] as [UInt8])
        buffer.writeInteger(last)
        buffer.writeInteger(errorCode)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        goAwaySent = true
    }

    fileprivate func onBeginHeaders(streamID: Int32) {
        machine.streamOpened(streamID, now: now)
        liveStreams += 1
        unpublishedOpened += 1
    }

    fileprivate func onHeader(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        machine.headerReceived(streamID, name: name, value: value)
    }

    fileprivate func onHeadersComplete(streamID: Int32, endStream: Bool, isTrailer: Bool) {
        let action = isTrailer
            ? (endStream ? machine.endStreamReceived(streamID) : nil)
            : machine.headersComplete(streamID, endStream: endStream, now: now)
        if let action { pending.append(action) }
    }

    fileprivate func onData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        if let action = machine.dataReceived(streamID, bytes) { pending.append(action) }
    }

    fileprivate func onEndStream(streamID: Int32) {
        if let action = machine.endStreamReceived(streamID) { pending.append(action) }
    }

    fileprivate func onStreamClose(streamID: Int32, errorCode: UInt32) {
        if liveStreams > 0 {
            liveStreams -= 1
            unpublishedClosed += 1
        }
        let (wasPending, action) = machine.streamClosed(streamID, now: now)
        if let i = ioIndex(streamID) {
            if wasPending { streamIO[i].context?.cancel() }
            // Order does not matter: the last entry takes the slot (no shift of later entries;
            // moved out, not swapped, so its references are not retained and released).
            let last = streamIO.removeLast()
            if i < streamIO.count { streamIO[i] = last }
        }
        if errorCode == 0 { machine.responseCompleted() }
        if let action { pending.append(action) }
    }

    fileprivate func readBody(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let i = ioIndex(streamID) else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        // In place: copying the entry or its body array out would cost a retain and release.
        let (n, done) = streamIO.withUnsafeMutableBufferPointer { ios -> (Int, Bool) in
            let offset = ios[i].offset
            let n = min(length, ios[i].body.count - offset)
            ios[i].body.withUnsafeBufferPointer { src in
                if let base = src.baseAddress, n > 0 { buffer.update(from: base + offset, count: n) }
            }
            ios[i].offset += n
            guard ios[i].offset >= ios[i].body.count else { return (n, false) }
            ios[i].body = []
            return (n, true)
        }
        bodyBytesSent &+= n
        if done { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        return n
    }

    // MARK: Actions

    private func runPendingActions() {
        guard !batching else { return }
        batching = true
        defer { batching = false }
        // Index loop: actions may append more actions; no copy of the array is made.
        var i = 0
        while i < pending.count {
            let action = pending[i]
            i += 1
            run(action)
        }
        pending.removeAll(keepingCapacity: true)
    }

    private func run(_ action: HTTP2ConnectionStateMachine.Action) {
        guard let session, let context else { return }
        switch action {
        case .dispatch(let streamID):
            guard let request = machine.takeRequest(streamID) else { return }
            let requestContext = RequestContext(remoteAddress: remoteAddress, arrivalNanos: UInt64(clamping: now))
            streamIO.append(StreamIO(id: streamID, context: requestContext))
            let sink = self.sink ?? makeSink(context: context)
            responder.respond(to: request, context: requestContext, writer: ResponseWriter(sink: sink, token: Int64(streamID)))
        case .respondWithError(let streamID, let status, let message):
            if status == 400 { stats.malformedRequests.add(1) } else { stats.limitRejections.add(1) }
            submit(streamID: streamID, response: .error(ApusError(Self.code(forStatus: status), message)))
        case .sendContinue(let streamID):
            // The responses' scratch list: nghttp2 copies the fields during the submit.
            answerHead.forget()
            headerScratch.removeAll()
            headerScratch.append(literal: ":status", decimal: 100)
            let rv = headerScratch.withNV { nva, count in
                nghttp2_submit_headers(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, nil, nva, count, nil)
            }
            if rv < 0 { logger.debug("nghttp2_submit_headers (100 Continue) failed", metadata: ["error": "\(Self.errorString(rv))"]) }
        case .goAwayAndClose(let errorCode, let reason):
            logger.info("closing HTTP/2 connection", metadata: ["reason": "\(reason)", "peer": "\(remoteAddress)"])
            // Whatever nghttp2 queued goes first; if it was a GOAWAY, ours would be a second one
            // (RFC 9113 6.8: its last stream id must not grow), so it is not sent.
            flush()
            if !goAwaySent {
                if errorCode == HTTP2ConnectionStateMachine.enhanceYourCalm { stats.calmGoAways.add(1) }
                ownGoAwaySubmitted = true
                let rv = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session), errorCode, nil, 0)
                if rv != 0 { logger.debug("nghttp2_submit_goaway failed", metadata: ["error": "\(Self.errorString(rv))"]) }
                flush()
                // A session failed by a callback may no longer serialize frames.
                if !goAwaySent { writeRawGoAway(errorCode: errorCode) }
            }
            closeAfterFlush()
        case .sendShutdownNotice:
            let rv = nghttp2_submit_shutdown_notice(session)
            if rv != 0 { logger.debug("nghttp2_submit_shutdown_notice failed", metadata: ["error": "\(Self.errorString(rv))"]) }
        case .sendFinalGoAway:
            let rv = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session), NGHTTP2_NO_ERROR.rawValue, nil, 0)
            if rv != 0 { logger.debug("nghttp2_submit_goaway failed", metadata: ["error": "\(Self.errorString(rv))"]) }
        case .close(let reason):
            logger.debug("closing HTTP/2 connection", metadata: ["reason": "\(reason)", "peer": "\(remoteAddress)"])
            flush()
            closeAfterFlush()
        }
    }

    private static func code(forStatus status: Int) -> ApusError.Code {
        ApusError.Code.allCases.first { $0.httpStatus == status } ?? .badRequest
    }

    private var sink: LoopResponseSink?

    private func makeSink(context: ChannelHandlerContext) -> LoopResponseSink {
        let sink = LoopResponseSink(loop: context.eventLoop, target: self)
        self.sink = sink
        return sink
    }

    func deliver(_ response: Response, token: Int64) {
        answer(streamID: Int32(truncatingIfNeeded: token), response: response)
    }

    func deliverAll(_ answers: [(Response, Int64)]) {
        let wasBatching = batching
        batching = true
        for (response, token) in answers { answer(streamID: Int32(truncatingIfNeeded: token), response: response) }
        batching = wasBatching
        if !batching, !holdingFlush { flush() }
    }

    /// A responder's answer, on the loop.
    private func answer(streamID: Int32, response: Response) {
        guard session != nil, machine.answerSubmitted(streamID) else { return }
        submit(streamID: streamID, response: response)
        guard !batching, !holdingFlush else { return }
        // Answers given in a coalescing scope on this loop (a release running batches inline):
        // one flush for all of this connection's answers at the scope's end, not one per answer.
        if WakeupCoalescer.isBatching {
            if !WakeupCoalescer.hasDeferred(key: self) { _ = WakeupCoalescer.defer(key: self) { [self] in flush() } }
            return
        }
        flush()
    }

    private func submit(streamID: Int32, response: Response) {
        guard let session else { return }
        // One byte buffer holds every name and value; nghttp2 copies them during the call.
        answerHead.pack(status: response.status, bodyCount: response.body.count, headers: response.headers, into: headerScratch)
        let hasBody = !response.body.isEmpty
        if hasBody {
            if let i = ioIndex(streamID) {
                streamIO[i].body = response.body
                streamIO[i].offset = 0
            } else {
                streamIO.append(StreamIO(id: streamID, context: nil, body: response.body))
            }
        }
        let rv = headerScratch.withNV { nv, count in
            if hasBody {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: h2ReadBody)
                return nghttp2_submit_response(session, streamID, nv, count, &provider)
            }
            return nghttp2_submit_response(session, streamID, nv, count, nil)
        }
        if rv != 0 {
            if let i = ioIndex(streamID) { streamIO[i].body = [] }
            logger.debug("nghttp2_submit_response failed", metadata: ["stream": "\(streamID)", "error": "\(Self.errorString(rv))"])
        }
    }

    // MARK: Outbound

    private func publishStreamCounts() {
        if unpublishedOpened > 0 { stats.streamsOpened(unpublishedOpened) }
        if unpublishedClosed > 0 { stats.streamsClosed(unpublishedClosed) }
        unpublishedOpened = 0
        unpublishedClosed = 0
    }

    /// Moves everything nghttp2 wants to send into one buffer and writes it, unless the channel is
    /// not writable (then nghttp2 keeps it until `channelWritabilityChanged`).
    private func flush() {
        // After the write: streams close while nghttp2 serializes their last frame.
        defer { publishStreamCounts() }
        guard let session, let context, context.channel.isWritable || closing else { return }
        let buffer: ByteBuffer?
        let bodyBytesBefore = bodyBytesSent
        defer {
            // A peer that keeps its window shut holds our answers without ever making the
            // socket unwritable: watch for answers that cannot make progress.
            let waiting = streamIO.contains { !$0.body.isEmpty }
            machine.flowControlProgress(blocked: waiting && bodyBytesSent == bodyBytesBefore, now: now)
        }
        switch NGHTTP2Output.collect(session, allocator: context.channel.allocator) {
        case .success(let bytes): buffer = bytes
        case .failure(let error):
            logger.debug("nghttp2_session_mem_send failed", metadata: ["error": "\(error)"])
            closing = true
            context.close(promise: nil)
            return
        }
        if let buffer {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if !closing, nghttp2_session_want_read(session) == 0, nghttp2_session_want_write(session) == 0 {
            closeAfterFlush()
        }
    }

    private func closeAfterFlush() {
        guard let context, !closing else { return }
        closing = true
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

// MARK: - nghttp2 callbacks: file-level C functions, `self` recovered from user_data.

/// Runs `body` with the handler behind `user_data` (or returns `otherwise` without one). The
/// handler is borrowed, not retained: it owns the session, so it outlives every callback, and a
/// retain/release pair per callback (a dozen per request) was 3% of a request.
private func withHandler<R>(_ userData: UnsafeMutableRawPointer?, otherwise: R, _ body: (HTTP2ServerHandler) -> R) -> R {
    guard let userData else { return otherwise }
    return Unmanaged<HTTP2ServerHandler>.fromOpaque(userData)._withUnsafeGuaranteedRef(body)
}

private func h2OnBeginFrame(_ session: OpaquePointer?, _ hd: UnsafePointer<nghttp2_frame_hd>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let hd else { return 0 }
    return withHandler(userData, otherwise: 0) { $0.onBeginFrame(type: hd.pointee.type, flags: hd.pointee.flags, length: hd.pointee.length) }
}

private func h2OnFrameSend(_ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let frame, UInt32(frame.pointee.hd.type) == NGHTTP2_GOAWAY.rawValue else { return 0 }
    withHandler(userData, otherwise: ()) { $0.onGoAwaySent(errorCode: frame.pointee.goaway.error_code) }
    return 0
}

private func h2OnBeginHeaders(_ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let frame else { return 0 }
    if UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue, frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
        withHandler(userData, otherwise: ()) { $0.onBeginHeaders(streamID: frame.pointee.hd.stream_id) }
    }
    return 0
}

private func h2OnHeader(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?,
    _ name: UnsafePointer<UInt8>?, _ nameLength: Int, _ value: UnsafePointer<UInt8>?, _ valueLength: Int,
    _ flags: UInt8, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }
    withHandler(userData, otherwise: ()) {
        $0.onHeader(
            streamID: frame.pointee.hd.stream_id,
            name: UnsafeBufferPointer(start: name, count: nameLength),
            value: UnsafeBufferPointer(start: value, count: valueLength)
        )
    }
    return 0
}

private func h2OnFrameRecv(_ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let frame else { return 0 }
    let hd = frame.pointee.hd
    let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    withHandler(userData, otherwise: ()) { handler in
        switch UInt32(hd.type) {
        case NGHTTP2_HEADERS.rawValue:
            let category = frame.pointee.headers.cat
            if category == NGHTTP2_HCAT_REQUEST {
                handler.onHeadersComplete(streamID: hd.stream_id, endStream: endStream, isTrailer: false)
            } else if category == NGHTTP2_HCAT_HEADERS {
                handler.onHeadersComplete(streamID: hd.stream_id, endStream: endStream, isTrailer: true)
            }
        case NGHTTP2_DATA.rawValue where endStream:
            handler.onEndStream(streamID: hd.stream_id)
        default:
            break
        }
    }
    return 0
}

private func h2OnDataChunkRecv(
    _ session: OpaquePointer?, _ flags: UInt8, _ streamID: Int32, _ data: UnsafePointer<UInt8>?, _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    withHandler(userData, otherwise: ()) { $0.onData(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length)) }
    return 0
}

private func h2OnStreamClose(_ session: OpaquePointer?, _ streamID: Int32, _ errorCode: UInt32, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    withHandler(userData, otherwise: ()) { $0.onStreamClose(streamID: streamID, errorCode: errorCode) }
    return 0
}

private func h2ReadBody(
    _ session: OpaquePointer?, _ streamID: Int32, _ buffer: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?, _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    return withHandler(userData, otherwise: Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)) { $0.readBody(streamID: streamID, into: buffer, length: length, flags: flags) }
}

private func h2OnExtensionChunk(
    _ session: OpaquePointer?, _ hd: UnsafePointer<nghttp2_frame_hd>?, _ data: UnsafePointer<UInt8>?, _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    0
}

private func h2UnpackExtension(
    _ session: OpaquePointer?, _ payload: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ hd: UnsafePointer<nghttp2_frame_hd>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    NGHTTP2_ERR_CANCEL.rawValue
}
