import Logging

/// The process's log destination: structured lines on standard error at one level. Bootstrapped
/// once per process, by the command that runs.
enum StandardErrorLogging {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
