/// The lifecycle of one model version, as a pure state machine: the repository feeds it events
/// and acts on the returned actions (serve, stop serving, free). No I/O, no clock.
///
///     loading --loaded--> ready --retire--> draining --drained--> unloaded
///        \--failed--> failed(reason)          (ready is never left for failed: the old version
///                                              keeps serving when a reload of other files fails)
///
/// Invariant: only `ready` versions are in a serving snapshot; a version is freed only from
/// `draining` once its in-flight count reached zero. Value type, not thread-safe.
public struct VersionLifecycle: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case loading
        case ready
        case draining
        case unloaded
        case failed(String)

        /// Upper-case name used by the API, logs and metrics.
        public var name: String {
            switch self {
            case .loading: "LOADING"
            case .ready: "READY"
            case .draining: "DRAINING"
            case .unloaded: "UNLOADED"
            case .failed: "FAILED"
            }
        }

        public var reason: String? {
            if case .failed(let reason) = self { return reason }
            return nil
        }
    }

    public enum Action: Sendable, Equatable {
        /// Put the version in the serving snapshot.
        case startServing
        /// Take it out of the snapshot (in-flight requests still finish).
        case stopServing
        /// Release its memory.
        case free
        /// Record the failure (log, metric, index).
        case reportFailure(String)
        case none
    }

    public private(set) var state: State = .loading

    public init() {}

    public mutating func loaded() -> Action {
        guard state == .loading else { return .none }
        state = .ready
        return .startServing
    }

    public mutating func failed(_ reason: String) -> Action {
        guard state == .loading else { return .none }
        state = .failed(reason)
        return .reportFailure(reason)
    }

    /// The version left the policy (deleted, newer versions arrived, unload call).
    public mutating func retire(inflight: Int) -> Action {
        switch state {
        case .ready:
            state = inflight == 0 ? .unloaded : .draining
            return inflight == 0 ? .free : .stopServing
        case .loading, .failed:
            state = .unloaded
            return .free
        case .draining, .unloaded:
            return .none
        }
    }

    /// Called when a draining version's in-flight count is observed.
    public mutating func observed(inflight: Int) -> Action {
        guard state == .draining, inflight == 0 else { return .none }
        state = .unloaded
        return .free
    }
}
