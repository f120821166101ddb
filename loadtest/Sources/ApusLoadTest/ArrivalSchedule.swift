/// When each request is meant to be sent, for open-loop load: constant spacing or a Poisson
/// process (exponential gaps), from a seeded generator so runs are reproducible.
///
/// Latency is measured from these intended times, not from the actual send, so a server that
/// stalls shows its stall in the percentiles instead of silently lowering the offered load
/// (no coordinated omission). Value type.
public struct ArrivalSchedule: Sendable {
    public enum Kind: String, Sendable, Codable {
        case constant, poisson
    }

    public let kind: Kind
    /// Requests per second of this schedule (one connection's share).
    public let rate: Double
    private var rng: SplitMix64
    private var next: Double = 0

    /// `phase`: seconds the first send is delayed. Constant schedules of several connections
    /// take phases 0, 1/total, 2/total, ... so together they are evenly spaced; in step, every
    /// connection would send at the same instant and each burst would queue at the server.
    public init(kind: Kind, rate: Double, seed: UInt64, phase: Double = 0) {
        self.kind = kind
        self.rate = rate
        self.rng = SplitMix64(seed: seed)
        self.next = kind == .constant ? phase : 0
    }

    /// Nanoseconds from the start of the schedule to the next intended send.
    public mutating func nextOffsetNanos() -> UInt64 {
        let current = next
        let gap: Double
        switch kind {
        case .constant: gap = 1 / rate
        case .poisson: gap = -log(1 - rng.nextUnit()) / rate
        }
        next += gap
        return UInt64(current * 1e9)
    }
}

/// A tiny, fast, seedable generator (Steele et al.); the standard library has no seeded one.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

import Foundation
