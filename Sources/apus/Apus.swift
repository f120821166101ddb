import ApusServer
import ArgumentParser

/// The `apus` command line: `apus serve` runs the server (the default), `apus bundle` makes and
/// checks model bundles, `apus bench-kernels` measures the runtime.
@main
struct Apus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apus",
        abstract: "Apus: an HTTP/2 inference server for classic ML models.",
        version: ApusVersion.string,
        subcommands: [ServeCommand.self, PredictCommand.self, BundleCommand.self, BenchKernelsCommand.self, BenchRouteCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
