import ApusServer
import ArgumentParser

/// The `apus` command line: `apus serve` runs the server.
@main
struct Apus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apus",
        abstract: "Apus: an HTTP/2 inference server for classic ML models.",
        version: ApusVersion.string,
        subcommands: [ServeCommand.self, BenchKernelsCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
