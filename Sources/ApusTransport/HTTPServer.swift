import ApusCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The listening server: one SwiftNIO event loop per thread, each accepted connection sniffed
/// into HTTP/2 (nghttp2) or HTTP/1.x (NIOHTTP1), both answered by one `Responder`.
///
/// Lifecycle: `start()` once, then `drain(timeout:)` (graceful: stop accepting, let in-flight
/// requests finish, GOAWAY, close) and `shutdown()`. Thread-safe; all methods may be called from
/// any task.
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String = "127.0.0.1"
        public var port: Int = 8080
        public var threads: Int = System.coreCount
        public var limits = TransportLimits()
        public var backlog: Int32 = 1024
        public init() {}
    }

    public let configuration: Configuration
    public let stats: TransportStats
    private let responder: any Responder
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let state = NIOLockedValueBox(State())

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var draining = false
    }

    public init(configuration: Configuration, responder: any Responder, logger: Logger, stats: TransportStats = TransportStats()) {
        self.configuration = configuration
        self.stats = stats
        self.responder = responder
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
    }

    /// Binds and starts accepting. Returns the bound port (useful with port 0).
    @discardableResult
    public func start() async throws -> Int {
        let limits = configuration.limits
        let responder = self.responder
        let logger = self.logger
        let stats = self.stats
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: configuration.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(low: max(1, limits.maxOutboundQueueBytes / 2), high: max(2, limits.maxOutboundQueueBytes))
            )
            .childChannelInitializer { [weak self] channel in
                guard let self else { return channel.eventLoop.makeSucceededVoidFuture() }
                return channel.eventLoop.makeCompletedFuture {
                    try self.register(channel)
                    try channel.pipeline.syncOperations.addHandler(
                        ProtocolSniffingHandler(limits: limits) { verdict, context in
                            try Self.install(verdict, context: context, responder: responder, limits: limits, logger: logger, stats: stats)
                        }
                    )
                }
            }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        state.withLockedValue { $0.listener = channel }
        let port = channel.localAddress?.port ?? configuration.port
        logger.info("listening", metadata: ["host": "\(configuration.host)", "port": "\(port)", "threads": "\(configuration.threads)"])
        return port
    }

    private func register(_ channel: any Channel) throws {
        let accepted = state.withLockedValue { state -> Bool in
            guard !state.draining else { return false }
            state.connections[ObjectIdentifier(channel)] = channel
            return true
        }
        guard accepted else { throw ApusError(.unavailable, "server is draining") }
        stats.connectionsAccepted.add(1)
        stats.connectionOpened()
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.stats.connectionClosed()
            _ = self?.state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
        }
    }

    private static func install(
        _ verdict: PrefaceSniffer.Verdict, context: ChannelHandlerContext, responder: any Responder,
        limits: TransportLimits, logger: Logger, stats: TransportStats
    ) throws {
        let pipeline = context.pipeline.syncOperations
        switch verdict {
        case .http2:
            stats.http2Connections.add(1)
            try pipeline.addHandler(
                HTTP2ServerHandler(responder: responder, limits: limits, logger: logger, stats: stats),
                position: .after(context.handler)
            )
        case .http1, .needMoreBytes:
            stats.http1Connections.add(1)
            let http1 = HTTP1ServerHandler(responder: responder, limits: limits, logger: logger, stats: stats)
            let observer = HTTP1ByteObserver(handler: http1)
            try pipeline.addHandler(observer, position: .after(context.handler))
            let bound = NIOLoopBound((http1, observer), eventLoop: context.eventLoop)
            let upgrader = H2CUpgrader { upgrade in
                HTTP2ServerHandler(responder: responder, limits: limits, logger: logger, stats: stats, upgrade: upgrade)
            }
            try pipeline.configureHTTPServerPipeline(
                position: .after(observer),
                withPipeliningAssistance: true,
                withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                    // HTTP/2 from here on: the HTTP/1 handler and byte observer leave.
                    context.pipeline.syncOperations.removeHandler(bound.value.0, promise: nil)
                    context.pipeline.syncOperations.removeHandler(bound.value.1, promise: nil)
                }),
                withErrorHandling: true
            )
            try pipeline.addHandler(http1)
        }
    }

    /// The bound address of the listener, once started.
    public var localPort: Int? {
        state.withLockedValue { $0.listener?.localAddress?.port }
    }

    /// Graceful shutdown: stop accepting, tell every connection to drain (HTTP/2: shutdown notice
    /// then final GOAWAY with the last stream id; HTTP/1: close after the current answer), wait
    /// for them to close, and force-close whatever is left after `timeout`.
    public func drain(timeout: TimeAmount) async {
        let (listener, connections) = state.withLockedValue { state in
            state.draining = true
            return (state.listener, Array(state.connections.values))
        }
        logger.info("draining", metadata: ["connections": "\(connections.count)"])
        try? await listener?.close()
        for channel in connections {
            channel.pipeline.fireUserInboundEventTriggered(TransportDrainEvent())
        }
        let loop = group.next()
        let all = EventLoopFuture.andAllComplete(connections.map { $0.closeFuture }, on: loop)
        let forced = loop.scheduleTask(in: timeout) {
            for channel in connections where channel.isActive { channel.close(promise: nil) }
        }
        try? await all.get()
        forced.cancel()
        logger.info("drained")
    }

    /// Stops the event loops. Call after `drain`.
    public func shutdown() async {
        try? await group.shutdownGracefully()
    }
}
