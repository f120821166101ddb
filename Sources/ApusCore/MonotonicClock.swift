#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The serving path's clock: nanoseconds of `CLOCK_MONOTONIC` (on Darwin, of the clock
/// `DispatchTime` uses). Arrival times, deadlines, queue waits and durations are all read from it,
/// so they compare with each other; it is read twice per request.
///
/// Why not `DispatchTime.now().uptimeNanoseconds`: the same clock on Linux, read through
/// libdispatch's `dispatch_time`, about 170 more instructions per request. Timers that take a
/// `DispatchTime` are armed relative to `DispatchTime.now()`, never from these values, so the two
/// clocks never need to agree on an origin. Thread-safe (stateless).
public enum MonotonicClock {
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        #if canImport(Darwin)
        return clock_gettime_nsec_np(CLOCK_UPTIME_RAW)
        #else
        var ts = timespec()
        // Cannot fail for CLOCK_MONOTONIC with a valid pointer.
        _ = clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
        #endif
    }
}
