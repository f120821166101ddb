import ApusServer
import ArgumentParser
import Logging

/// The process's log destination: lines on standard error at one level, as text (swift-log's
/// stream format) or JSON Lines (`--log-format json`). Bootstrapped once per process, by the
/// command that runs.
enum StandardErrorLogging {
    enum Format: String, CaseIterable, ExpressibleByArgument {
        case text, json
    }

    static func bootstrap(level: Logger.Level, format: Format = .text) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
