#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Coalesces thread hand-offs within one burst of work on the current thread.
///
/// Why: every hand-off between an event loop and a worker costs a wake-up and, on a busy or
/// pinned core, a context switch. When an event loop dispatches the 30 requests of one socket
/// read, they should reach the batcher as one batch (one wake-up), and when a worker finishes a
/// batch, each connection should be woken once for all its answers, not once per answer.
///
/// `batch { ... }` opens a scope on the current thread; inside it, `defer(key:_:)` records an
/// action once per key and runs it when the outermost scope ends (in first-registered order).
/// Outside any scope `defer` returns false and the caller acts at once. Scopes are per thread
/// (thread-local storage), so no locking; actions run on the same thread, after the body.
///
/// `batchUntilTaskRuns` opens a scope that outlives its body, for an event loop's whole tick: see
/// there.
public enum WakeupCoalescer {
    /// Sendable only to travel inside the task that closes it; it is used on its own thread only.
    final class Scope: @unchecked Sendable {
        var keys: [ObjectIdentifier] = []
        var actions: [() -> Void] = []
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // A failure here would only disable coalescing (current returns nil).
        _ = pthread_key_create(&key, nil)
        return key
    }()

    private static var current: Scope? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Unmanaged<Scope>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Runs `body` inside this thread's open scope, or opens one that stays open after `body`
    /// returns and closes (running its deferred actions) when the task handed to `scheduleEnd`
    /// runs.
    ///
    /// An event loop passes its own `execute`: NIO runs the tasks queued while it handles a tick's
    /// I/O after all of that I/O, so the scope spans every socket read of the tick. Requests from
    /// all of the loop's connections then reach a batcher together, and HTTP/1.1 requests (one
    /// per read) are batched and run inline like HTTP/2 bursts instead of each going to a worker.
    /// `scheduleEnd` must run the task later, on this same thread.
    public static func batchUntilTaskRuns<T>(_ scheduleEnd: (@escaping @Sendable () -> Void) -> Void, _ body: () throws -> T) rethrows -> T {
        if current != nil { return try body() }
        let scope = Scope()
        // Retained while open: a task that never ran (a loop torn down) leaks one scope rather
        // than leaving this thread a dangling pointer.
        pthread_setspecific(key, Unmanaged.passRetained(scope).toOpaque())
        scheduleEnd { close(scope) }
        return try body()
    }

    /// Closes `scope` if it is this thread's open one (once), then runs its actions.
    private static func close(_ scope: Scope) {
        let opaque = Unmanaged.passUnretained(scope).toOpaque()
        guard let raw = pthread_getspecific(key), raw == opaque else { return }
        pthread_setspecific(key, nil)
        Unmanaged<Scope>.fromOpaque(opaque).release()
        for action in scope.actions { action() }
    }

    /// Whether a scope is open on this thread.
    public static var isBatching: Bool { current != nil }

    /// Runs `body`; actions deferred inside run once, when it returns.
    public static func batch<T>(_ body: () throws -> T) rethrows -> T {
        if current != nil { return try body() }
        let scope = Scope()
        pthread_setspecific(key, Unmanaged.passUnretained(scope).toOpaque())
        defer {
            pthread_setspecific(key, nil)
            withExtendedLifetime(scope) {
                for action in scope.actions { action() }
            }
        }
        return try body()
    }

    /// Whether an action for `key` is already recorded in the current scope (lets a caller skip
    /// building a closure that `defer` would drop).
    public static func hasDeferred(key: AnyObject) -> Bool {
        guard let scope = current else { return false }
        return scope.keys.contains(ObjectIdentifier(key))
    }

    /// Records `action` to run at the end of the current scope, once per `key` (later calls with
    /// the same key are dropped: the first action must handle everything queued meanwhile).
    /// Returns false (and records nothing) when no scope is open.
    public static func `defer`(key: AnyObject, _ action: @escaping () -> Void) -> Bool {
        guard let scope = current else { return false }
        let id = ObjectIdentifier(key)
        if !scope.keys.contains(id) {
            scope.keys.append(id)
            scope.actions.append(action)
        }
        return true
    }
}
