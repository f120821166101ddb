import ApusInference
import Dispatch
import Foundation
import Logging
import Synchronization

/// Notices repository changes and hot-swaps versions: a reload runs on a poll timer
/// (`--poll-interval`), on SIGHUP, and on `trigger` (admin calls, tests).
///
/// Reloads run one at a time on a private serial queue, never on an event loop; triggers that
/// arrive while one is pending coalesce into it (a burst of file events costs one scan). Every
/// tick also frees draining versions whose requests finished. Thread-safe.
public final class RepositoryWatcher: Sendable {
    public enum Reason: String, Sendable {
        case poll, signal, admin, start
    }

    public let repository: ModelRepository
    private let queue = DispatchQueue(label: "apus.repository-watcher")
    private let pending = Atomic<Bool>(false)
    // Dispatch sources are not Sendable; every access holds `sourcesLock`.
    nonisolated(unsafe) private var sources: [any DispatchSourceProtocol] = []
    private let sourcesLock = NSLock()
    private let logger: Logger

    public init(repository: ModelRepository, logger: Logger) {
        self.repository = repository
        self.logger = logger
    }

    /// Asks for a reload; returns at once. `completion` runs after the reload that covers this
    /// trigger, with the generation it published.
    public func trigger(_ reason: Reason, completion: (@Sendable (Int) -> Void)? = nil) {
        let alreadyPending = pending.exchange(true, ordering: .acquiringAndReleasing)
        if alreadyPending, completion == nil { return }
        queue.async { [self] in
            // Whoever runs first clears the flag and scans; later queued blocks with nothing
            // pending still report the generation they observed.
            let generation: Int
            if pending.exchange(false, ordering: .acquiringAndReleasing) {
                generation = repository.reload()
                logger.debug("repository reloaded", metadata: ["reason": "\(reason.rawValue)", "generation": "\(generation)"])
            } else {
                generation = repository.snapshot.generation
            }
            completion?(generation)
        }
    }

    /// Async form of `trigger`, for admin routes and tests.
    @discardableResult
    public func reload(_ reason: Reason = .admin) async -> Int {
        await withCheckedContinuation { continuation in
            trigger(reason) { continuation.resume(returning: $0) }
        }
    }

    /// Starts the poll timer (`interval` > 0) and the SIGHUP handler.
    public func start(pollInterval: Duration?, handleSIGHUP: Bool) {
        sourcesLock.lock()
        defer { sourcesLock.unlock() }
        if let pollInterval, pollInterval > .zero {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            let nanos = Int(pollInterval.components.seconds) * 1_000_000_000 + Int(pollInterval.components.attoseconds / 1_000_000_000)
            timer.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .milliseconds(10))
            timer.setEventHandler { [self] in
                repository.sweep()
                trigger(.poll)
            }
            timer.resume()
            sources.append(timer)
        }
        if handleSIGHUP {
            signal(SIGHUP, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
            source.setEventHandler { [self] in
                logger.info("SIGHUP: reloading the repository")
                trigger(.signal)
            }
            // The source is armed asynchronously; wait (bounded) until it is, so a SIGHUP sent
            // as soon as the server announces its port reaches it.
            let armed = DispatchSemaphore(value: 0)
            source.setRegistrationHandler { armed.signal() }
            source.resume()
            sources.append(source)
            _ = armed.wait(timeout: .now() + .seconds(2))
        }
    }

    public func stop() {
        sourcesLock.lock()
        defer { sourcesLock.unlock() }
        for source in sources { source.cancel() }
        sources.removeAll()
    }
}
