import Foundation

/// The standard Prometheus process metrics, read from /proc (Linux); zeros elsewhere. Value type.
public struct ProcessStats: Sendable {
    public var cpuSeconds = 0.0
    public var residentBytes = 0
    public var virtualBytes = 0
    public var openFDs = 0

    public static func read() -> ProcessStats {
        var stats = ProcessStats()
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ")
            if fields.count >= 2 {
                stats.virtualBytes = (Int(fields[0]) ?? 0) * pageSize
                stats.residentBytes = (Int(fields[1]) ?? 0) * pageSize
            }
        }
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
            let rest = stat[stat.index(after: close)...].split(separator: " ")
            if rest.count > 12, ticks > 0 {
                stats.cpuSeconds = (Double(rest[11]) ?? 0) / ticks + (Double(rest[12]) ?? 0) / ticks
            }
        }
        stats.openFDs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        return stats
    }
}
