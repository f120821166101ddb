import Foundation
import NIOCore

/// How many cores this process can actually run on: the fewest of its CPU affinity mask
/// (`taskset`, cpusets) and its cgroup CPU quota (NIO's `System.coreCount`, which reads the quota
/// and the cgroup's cpuset but not the affinity mask). Foundation's `activeProcessorCount`
/// counts every online core, so a server started with `taskset -c 0` ran two event loops on one
/// core. Stateless; any thread.
public enum UsableCores {
    public static var count: Int {
        var usable = System.coreCount
        // The affinity mask as the kernel reports it (`sched_getaffinity` needs _GNU_SOURCE,
        // which Swift's Glibc module does not define).
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8), let affinity = affinityCount(status: status) {
            usable = min(usable, affinity)
        }
        return max(1, usable)
    }

    /// Cores in the `Cpus_allowed:` mask of a /proc/PID/status text (hex words joined by commas);
    /// nil without one or with anything else in it.
    static func affinityCount(status: String) -> Int? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return nil }
        var cores = 0
        for character in line.dropFirst("Cpus_allowed:".count) where character != "," && !character.isWhitespace {
            guard let nibble = character.hexDigitValue else { return nil }
            cores += nibble.nonzeroBitCount
        }
        return cores > 0 ? cores : nil
    }
}
