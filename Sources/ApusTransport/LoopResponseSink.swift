import ApusCore
import NIOConcurrencyHelpers
import NIOCore

/// What a `LoopResponseSink` delivers answers to: a connection handler, on its event loop.
protocol LoopResponseTarget: AnyObject {
    func deliver(_ response: Response, token: Int64)
    /// Several answers at once (one write for all of them where the protocol allows).
    func deliverAll(_ answers: [(Response, Int64)])
}

extension LoopResponseTarget {
    func deliverAll(_ answers: [(Response, Int64)]) {
        for (response, token) in answers { deliver(response, token: token) }
    }
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
    /// Answers given inside a `WakeupCoalescer` scope on another thread (a worker finishing a
    /// batch), delivered together with one hop at the scope's end.
    private let held = NIOLockedValueBox<[(Response, Int64)]>([])

    init(loop: any EventLoop, target: any LoopResponseTarget) {
        self.loop = loop
        self.target = NIOLoopBoundBox(target, eventLoop: loop)
    }

    func complete(_ response: Response, token: Int64) {
        if loop.inEventLoop {
            target.value?.deliver(response, token: token)
            return
        }
        let target = self.target
        let held = self.held
        let loop = self.loop
        if WakeupCoalescer.isBatching {
            held.withLockedValue { $0.append((response, token)) }
            _ = WakeupCoalescer.defer(key: self) {
                let answers = held.withLockedValue { list -> [(Response, Int64)] in
                    defer { list.removeAll(keepingCapacity: true) }
                    return list
                }
                guard !answers.isEmpty else { return }
                loop.execute { target.value?.deliverAll(answers) }
            }
        } else {
            loop.execute { target.value?.deliver(response, token: token) }
        }
    }

    /// On the loop: no more deliveries.
    func detach() { target.value = nil }
}
