import ApusCore
import Logging
import NIOCore
import NIOHTTP1

/// The I/O shell of one HTTP/1.x connection: turns NIOHTTP1 parts into `Request`s, enforces the
/// limits through `HTTP1ConnectionStateMachine`, writes `Response`s with keep-alive.
///
/// Threading: lives on its channel's event loop; answers from other threads hop back to it.
final class HTTP1ServerHandler: ChannelDuplexHandler, RemovableChannelHandler, LoopResponseTarget {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: any Responder
    private let logger: Logger
    private let stats: TransportStats
    private var machine: HTTP1ConnectionStateMachine
    private var context: ChannelHandlerContext?
    private var timer: RepeatedTask?
    private var requestContext: RequestContext?
    /// Bumped per request so a late answer to an old request is ignored.
    private var generation: Int64 = 0
    private var sink: LoopResponseSink?
    /// The byte observer below the HTTP codec: errors that end the connection are written
    /// through it as raw bytes, because NIO's pipelining handler (rightly) refuses a response to
    /// a request it never saw (a slowloris head that never finished). Weak: the pipeline owns it.
    weak var rawOutput: HTTP1ByteObserver?
    private var readPending = false
    private var remoteAddress = "unknown"

    init(responder: any Responder, limits: TransportLimits, logger: Logger, stats: TransportStats) {
        self.responder = responder
        self.logger = logger
        self.stats = stats
        self.machine = HTTP1ConnectionStateMachine(limits: limits, now: HTTP2ServerHandler.now())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        remoteAddress = context.channel.remoteAddress?.peerText ?? "unknown"
        let tick = TimeAmount.nanoseconds(machine.limits.timerTickNanos)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            bound.value.onTick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        sink?.detach()
        sink = nil
        requestContext?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        sink?.detach()
        sink = nil
        requestContext?.cancel()
        context.fireChannelInactive()
    }

    /// Called by `HTTP1ByteObserver` when raw bytes arrive, before decoding.
    func bytesReceived() {
        machine.bytesReceived(now: HTTP2ServerHandler.now())
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Requests of this loop tick's reads (every connection's) reach the batchers together,
        // released when the tick's I/O is done: cheap batches then run inline instead of each
        // request going to a worker and back (two thread hand-offs per request).
        let loop = context.eventLoop
        WakeupCoalescer.batchUntilTaskRuns({ loop.execute($0) }) { handle(context: context, data: data) }
    }

    private func handle(context: ChannelHandlerContext, data: NIOAny) {
        let action: HTTP1ConnectionStateMachine.Action?
        switch unwrapInboundIn(data) {
        case .head(let head):
            var fields = HTTPFields()
            for (name, value) in head.headers { fields.add(name: name, value: value) }
            let version: Request.Version = head.version.minor == 0 ? .http1_0 : .http1_1
            action = machine.headReceived(
                method: head.method.rawValue, target: head.uri, version: version, headers: fields,
                keepAlive: head.isKeepAlive, now: HTTP2ServerHandler.now()
            )
        case .body(let buffer):
            action = buffer.withUnsafeReadableBytes { machine.bodyReceived($0) }
        case .end:
            action = machine.endReceived()
        }
        if let action { run(action, context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TransportDrainEvent {
            if let action = machine.beginDrain() { run(action, context: context) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        machine.writabilityChanged(writable: writable, now: HTTP2ServerHandler.now())
        if writable, readPending {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    /// Backpressure: no reading while the peer does not take our output.
    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let declined = error as? H2CUpgrader.Declined {
            // The request goes on over HTTP/1.1: NIO forwards it next.
            return logger.debug("\(declined)", metadata: ["peer": "\(remoteAddress)"])
        }
        logger.debug("HTTP/1 connection error", metadata: ["error": "\(error)", "peer": "\(remoteAddress)"])
        stats.protocolErrors.add(1)
        context.close(promise: nil)
    }

    private func onTick() {
        guard let context, let action = machine.tick(now: HTTP2ServerHandler.now()) else { return }
        run(action, context: context)
    }

    private func run(_ action: HTTP1ConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .dispatch(let request, _):
            generation += 1
            let requestContext = RequestContext(remoteAddress: remoteAddress)
            self.requestContext = requestContext
            let sink = self.sink ?? makeSink(context: context)
            responder.respond(to: request, context: requestContext, writer: ResponseWriter(sink: sink, token: generation))
        case .respondWithErrorAndClose(let status, let message):
            stats.limitRejections.add(1)
            let code = ApusError.Code.allCases.first { $0.httpStatus == status } ?? .badRequest
            let response = Response.error(ApusError(code, message))
            if let rawOutput {
                rawOutput.writeAndClose(Self.serialize(response))
            } else {
                write(response, keepAlive: false, context: context).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        case .sendContinue:
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
        case .close(let reason):
            logger.debug("closing HTTP/1 connection", metadata: ["reason": "\(reason)", "peer": "\(remoteAddress)"])
            context.close(promise: nil)
        }
    }

    private func makeSink(context: ChannelHandlerContext) -> LoopResponseSink {
        let sink = LoopResponseSink(loop: context.eventLoop, target: self)
        self.sink = sink
        return sink
    }

    func deliver(_ response: Response, token: Int64) {
        answer(response, generation: token)
    }

    private func answer(_ response: Response, generation: Int64) {
        guard let context, generation == self.generation, case .responding = machine.state else { return }
        requestContext = nil
        let keepAlive = machine.keepAliveForResponse
        let action = machine.responseSent(now: HTTP2ServerHandler.now())
        let written = write(response, keepAlive: keepAlive, context: context)
        if let action {
            written.assumeIsolated().whenComplete { _ in self.run(action, context: context) }
        }
    }

    /// A complete `connection: close` HTTP/1.1 response as bytes.
    static func serialize(_ response: Response) -> [UInt8] {
        let reason = HTTPResponseStatus(statusCode: response.status).reasonPhrase
        var head = "HTTP/1.1 \(response.status) \(reason)\r\n"
        for field in response.headers where field.name != "content-length" && field.name != "connection" {
            head += "\(field.name): \(field.value)\r\n"
        }
        head += "content-length: \(response.body.count)\r\nconnection: close\r\n\r\n"
        return Array(head.utf8) + response.body
    }

    @discardableResult
    private func write(_ response: Response, keepAlive: Bool, context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headers.count + 2)
        for field in response.headers where field.name != "content-length" && field.name != "connection" {
            headers.add(name: field.name, value: field.value)
        }
        headers.add(name: "content-length", value: String(response.body.count))
        headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: response.body.count)
            buffer.writeBytes(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
        return promise.futureResult
    }
}

/// Sits before the HTTP/1 decoder and tells the handler when raw bytes arrive, which starts the
/// header timer (slowloris) before the decoder has a whole head to show.
final class HTTP1ByteObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    typealias OutboundOut = ByteBuffer

    private let handler: HTTP1ServerHandler
    private var context: ChannelHandlerContext?

    init(handler: HTTP1ServerHandler) {
        self.handler = handler
        handler.rawOutput = self
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        handler.bytesReceived()
        context.fireChannelRead(data)
    }

    /// Writes `bytes` below the HTTP codec, then closes the connection.
    func writeAndClose(_ bytes: [UInt8]) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
