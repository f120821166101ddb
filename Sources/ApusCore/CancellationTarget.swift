/// Told when a request it registered for (`RequestContext.onCancel(_:token:)`) is cancelled.
/// Called on the thread that cancels (an event loop); must not block.
public protocol CancellationTarget: AnyObject, Sendable {
    func requestCancelled(token: UInt64)
}
