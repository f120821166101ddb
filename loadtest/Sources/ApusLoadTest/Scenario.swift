import ApusCore
import ApusInference
import Foundation

/// A scenario file: phases run one after another (steady load, spike, a canary shift between
/// phases...). Each phase overrides the command line's rate, duration and concurrency.
///
///     {"phases": [{"name": "steady", "rate": 1000, "duration": 10},
///                 {"name": "spike", "rate": 5000, "duration": 5, "arrival": "poisson"}]}
public struct Scenario: Codable, Sendable {
    public struct Phase: Codable, Sendable {
        public var name: String
        public var rate: Double?
        public var arrival: ArrivalSchedule.Kind?
        public var duration: Double?
        public var requests: Int?
        public var warmup: Double?
        public var connections: Int?
        public var streams: Int?
        /// A version number or label to target in this phase (else the model's default/split).
        public var label: String?

        public init(name: String, rate: Double?, arrival: ArrivalSchedule.Kind?, duration: Double?, requests: Int?, warmup: Double?,
                    connections: Int?, streams: Int?, label: String?) {
            self.name = name
            self.rate = rate
            self.arrival = arrival
            self.duration = duration
            self.requests = requests
            self.warmup = warmup
            self.connections = connections
            self.streams = streams
            self.label = label
        }
    }

    public var phases: [Phase]

    public static func load(path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else { throw ApusError(.notFound, "scenario \(path) cannot be read") }
        let scenario = try ConfigJSON.decode(Scenario.self, from: data, what: "scenario \(path)")
        guard !scenario.phases.isEmpty else { throw ApusError(.badRequest, "scenario \(path) has no phases") }
        for phase in scenario.phases where phase.duration == nil && phase.requests == nil {
            throw ApusError(.badRequest, "scenario \(path): phase \(phase.name) needs a duration or a request count (load must be bounded)")
        }
        return scenario
    }
}
