import ApusCore
import Logging

/// A swift-log handler that writes each message as one JSON object per line (`apus serve
/// --log-format json`), for log pipelines that parse JSON Lines without a custom pattern:
///
/// `{"time":"2026-12-02T03:20:00.123Z","level":"info","label":"apus","message":"serving","source":"ApusServer","versions":"churn/1"}`
///
/// Metadata (the handler's, the logger's, the message's; later ones win) becomes top-level
/// fields, strings for plain values and JSON arrays and objects for nested ones. A metadata key
/// that would shadow one of the fixed fields is written as `metadata.<key>`. Each line is handed
/// to the output whole; `standardError` writes it in one `write` under a process-wide lock, so
/// lines from different threads never interleave. Thread-safe (a value; an output given to `init`
/// must accept calls from any thread).
public struct JSONLogHandler: LogHandler {
    public typealias Output = @Sendable ([UInt8]) -> Void

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: Output
    private let now: @Sendable () -> Int64

    /// `output` gets whole lines; `now` is the wall clock in nanoseconds since 1970 (injected in
    /// tests).
    public init(label: String, now: @escaping @Sendable () -> Int64 = AccessLog.unixNanosNow, output: @escaping Output) {
        self.label = label
        self.now = now
        self.output = output
        self.metadataProvider = LoggingSystem.metadataProvider
    }

    /// A handler writing to standard error, serialized across every handler of the process.
    public static func standardError(label: String) -> JSONLogHandler {
        JSONLogHandler(label: label) { bytes in standardErrorLock.withLock { _ in AccessLog.writeAll(bytes, to: 2) } }
    }

    private static let standardErrorLock = Locked(())

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit = event.metadata { all.merge(explicit) { _, new in new } }
        if let error = event.error { all["error"] = "\(error)" }
        output(Array(Self.line(time: now(), level: event.level, label: label, message: event.message.description, source: event.source,
                               metadata: all).utf8))
    }

    private static let fixedKeys: Set<String> = ["time", "level", "label", "message", "source"]

    static func line(time: Int64, level: Logger.Level, label: String, message: String, source: String, metadata: Logger.Metadata) -> String {
        var line = "{\"time\":\"" + AccessLog.timestamp(unixNanos: time) + "\",\"level\":" + JSONString.quote(level.rawValue)
        line += ",\"label\":" + JSONString.quote(label) + ",\"message\":" + JSONString.quote(message) + ",\"source\":" + JSONString.quote(source)
        // Sorted: the same message gives the same line, whatever the dictionary's order.
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            line += "," + JSONString.quote(fixedKeys.contains(key) ? "metadata." + key : key) + ":" + json(value)
        }
        return line + "}\n"
    }

    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): return JSONString.quote(text)
        case .stringConvertible(let convertible): return JSONString.quote(convertible.description)
        case .array(let values): return "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let members):
            return "{" + members.sorted(by: { $0.key < $1.key }).map { JSONString.quote($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
        }
    }
}
