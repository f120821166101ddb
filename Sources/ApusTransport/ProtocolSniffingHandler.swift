import Logging
import NIOCore

/// First handler of every connection: buffers bytes until `PrefaceSniffer` decides HTTP/2 or
/// HTTP/1.x, installs that protocol's handlers behind itself, replays the buffered bytes and
/// removes itself.
///
/// It also bounds the undecided phase: no byte within the idle timeout, or no verdict within the
/// header timeout after the first byte, closes the connection. Lives on the channel's event loop.
final class ProtocolSniffingHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var sniffer = PrefaceSniffer()
    private var buffered: ByteBuffer?
    /// Set once the protocol's handlers are installed. From then on reads pass through: NIO may
    /// deliver one re-entrantly while the buffered bytes are still being handled (a write that
    /// fails reads the socket to learn why), before this handler has left the pipeline. Sniffing
    /// that read again installed a second set of handlers in front of the first, and the next
    /// request crashed the server (an HTTP/1.1 client that pipelined 200 requests and closed).
    private var decided = false
    private var deadline: Scheduled<Void>?
    private let limits: TransportLimits
    private let install: (PrefaceSniffer.Verdict, ChannelHandlerContext) throws -> Void

    init(limits: TransportLimits, install: @escaping (PrefaceSniffer.Verdict, ChannelHandlerContext) throws -> Void) {
        self.limits = limits
        self.install = install
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context: context, nanos: limits.idleTimeoutNanos)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context, nanos: limits.idleTimeoutNanos) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    private func arm(context: ChannelHandlerContext, nanos: Int64) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: .nanoseconds(nanos)) {
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !decided else { return context.fireChannelRead(data) }
        var incoming = unwrapInboundIn(data)
        let verdict = sniffer.feed(incoming.readableBytesView)
        if buffered == nil {
            arm(context: context, nanos: limits.headerTimeoutNanos)
            buffered = incoming
        } else {
            buffered?.writeBuffer(&incoming)
        }
        guard verdict != .needMoreBytes, let bytes = buffered else { return }
        deadline?.cancel()
        deadline = nil
        buffered = nil
        decided = true
        do {
            try install(verdict, context)
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TransportDrainEvent {
            // No request can be in progress before the protocol is known.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
