import ApusCore
import NIOCore

/// What a `LoopResponseSink` delivers answers to: a connection handler, on its event loop.
protocol LoopResponseTarget: AnyObject {
    func deliver(_ response: Response, token: Int64)
}

/// The `ResponseSink` of one connection: hops answers from any thread onto the connection's
/// event loop and hands them to the handler there. Created once per connection.
///
/// It holds the handler strongly (no weak-reference cost per answer); the handler calls `detach()`
/// when the connection goes, which breaks the cycle and drops later answers.
/// Threading: `complete` may be called from any thread; delivery and `detach` run only on `loop`.
final class LoopResponseSink: ResponseSink {
    private let loop: any EventLoop
    private let target: NIOLoopBoundBox<(any LoopResponseTarget)?>

    init(loop: any EventLoop, target: any LoopResponseTarget) {
        self.loop = loop
        self.target = NIOLoopBoundBox(target, eventLoop: loop)
    }

    func complete(_ response: Response, token: Int64) {
        if loop.inEventLoop {
            target.value?.deliver(response, token: token)
        } else {
            let target = self.target
            loop.execute { target.value?.deliver(response, token: token) }
        }
    }

    /// On the loop: no more deliveries.
    func detach() { target.value = nil }
}
