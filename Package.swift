// swift-tools-version:6.0
import Foundation
import PackageDescription

// Dynamic exclusivity checks cost ~5% of the request path's time (measured with perf on the
// health route) and 10% of loading a forest; the code is Swift 6 strict-concurrency checked, so
// release builds of every library target drop them.
// Cross-module optimization: a request crosses six of our modules (transport, routes, service,
// batcher, codecs, metrics), and without it every call between them is an opaque call that
// retains its arguments. `apus bench-route` logreg, 17 interleaved pairs over two runs: medians
// 4209 -> 3671 ns and 3541 -> 3242 ns (mins 3412 -> 3230, 3209 -> 3163); same build time.
// Lexical lifetimes off (Swift's pre-5.7 rule: a value may be released after its last use, not
// only at the end of its scope) and copy propagation on let the optimizer drop retain/release
// pairs it must otherwise keep: callgrind, 10,000 batch-1 logreg requests, 31,218 -> 30,659
// instructions and 110.8 -> 98.9 retains per request; +1.5% req/s in alternated h2load rounds.
// Nothing here depends on a local outliving its last use (the C callbacks' `self` is the
// channel handler, which the pipeline keeps; WakeupCoalescer extends its scope explicitly).
let optimizedSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization",
                                                       "-Xfrontend", "-enable-lexical-lifetimes=false",
                                                       "-Xfrontend", "-enable-copy-propagation"], .when(configuration: .release))]

// Profile-guided optimization of the serving modules: release builds use the profile in
// tools/pgo (LLVM IR-level, recorded by scripts/pgo-profile.sh from the bench-serving workload),
// which lays out hot paths and guides inlining: logreg batch-1 over h2c +10-12% req/s in
// alternated h2load rounds, the batched MLP +10%. The kernels (ApusRuntime) and the ONNX loader
// are left out: code a profile never saw would be optimized as cold (for size). A profile older
// than the code is fine (functions that changed are compiled without it); APUS_PGO=off builds
// without it.
// APUS_PGO=generate builds instrumented binaries (the script's first step).
let pgoProfile = Context.packageDirectory + "/tools/pgo/apus.profdata"
let pgo: [String] = {
    switch ProcessInfo.processInfo.environment["APUS_PGO"] {
    case "generate"?: return ["-Xfrontend", "-ir-profile-generate"]
    case "off"?: return []
    default:
        // The profile's format is that of the LLVM in the toolchain that recorded it (Swift 6.3):
        // other toolchains build without it.
        #if compiler(>=6.3) && !compiler(>=6.4)
        return FileManager.default.fileExists(atPath: pgoProfile) ? ["-Xfrontend", "-ir-profile-use=" + pgoProfile] : []
        #else
        return []
        #endif
    }
}()
let pgoLink: [LinkerSetting] = ProcessInfo.processInfo.environment["APUS_PGO"] == "generate"
    ? [.unsafeFlags(["-profile-generate"], .when(configuration: .release))] : []
let releaseSettings: [SwiftSetting] = optimizedSettings + [.unsafeFlags(pgo, .when(configuration: .release))]

// The server and the load generator allocate with jemalloc (Debian's libjemalloc-dev), as
// nghttpd and h2load do: a request makes a few dozen small allocations, and glibc's malloc was
// 10-12% of the server's CPU. Measured side by side (LD_PRELOAD, same binary): the in-process
// request path 6.6 -> 5.4 us, RSS after load 60 -> 50 MB. Only the executables link it; the
// libraries run under either allocator (HeapTuning finds jemalloc at run time).
// APUS_SYSTEM_MALLOC=1 links none: a thread-sanitized server (scripts/tsan.sh) must leave malloc
// to TSan, which aborts when jemalloc's operator new and TSan's free meet on one block.
let jemalloc: [LinkerSetting] = ProcessInfo.processInfo.environment["APUS_SYSTEM_MALLOC"] == nil
    ? [.linkedLibrary("jemalloc", .when(platforms: [.linux]))] : []

// The kernels' SIMD code targets Haswell (x86-64-v3: AVX2 + FMA, every x86 server CPU since 2013) on x86
// hosts; elsewhere the toolchain's default CPU. Measured on the MLP at batch 4096: see
// scripts/bench-kernels.py.
#if arch(x86_64)
let kernelSettings: [SwiftSetting] = optimizedSettings + [.unsafeFlags(["-target-cpu", "haswell"], .when(configuration: .release))]
#else
let kernelSettings: [SwiftSetting] = optimizedSettings
#endif

// Layers, dependencies point one way (down):
//   apus (CLI)  ->  ApusServer (routes, app wiring)  ->  ApusTransport (NIO + nghttp2)  ->  ApusCore
// Only ApusTransport imports CNghttp2; ApusCore imports neither NIO nor generated code.
let package = Package(
    name: "Apus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "apus", targets: ["apus"]),
        .executable(name: "apus-loadtest", targets: ["apus-loadtest"]),
        .library(name: "ApusCore", targets: ["ApusCore"]),
        .library(name: "ApusClient", targets: ["ApusClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CNghttp2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(name: "ApusCore", swiftSettings: releaseSettings),
        // Tensors, kernels, compiled graphs: no dependencies at all.
        .target(name: "ApusRuntime", swiftSettings: kernelSettings),
        // ONNX protobuf -> ApusRuntime graphs; the generated code is internal to this module.
        .target(
            name: "ApusONNX",
            dependencies: ["ApusRuntime", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            // onnx.proto's repeated fields are not packed, so a 100-tree forest is ~300k fields,
            // each decoded into message storage behind an exclusivity check: 10% of its load time.
            swiftSettings: optimizedSettings
        ),
        // Repository, bundles, served versions, batching: the serving core (no NIO, no protobuf).
        .target(
            name: "ApusInference",
            dependencies: ["ApusCore", "ApusRuntime", "ApusONNX", .product(name: "Logging", package: "swift-log")],
            swiftSettings: releaseSettings
        ),
        // Hot-swap: poll timer, SIGHUP and admin triggers driving repository reloads.
        .target(
            name: "ApusHotSwap",
            dependencies: ["ApusInference", .product(name: "Logging", package: "swift-log")],
            swiftSettings: releaseSettings
        ),
        // A/B splitting and canary rollouts: stable MurmurHash3 bucketing of routing keys.
        .target(name: "ApusSplit", dependencies: ["ApusCore", "ApusInference", .product(name: "Logging", package: "swift-log")],
                swiftSettings: releaseSettings),
        // Prometheus /metrics and feature drift (Kolmogorov-Smirnov against the bundle's sample).
        .target(
            name: "ApusMetrics",
            dependencies: ["ApusCore", "ApusInference", "ApusRuntime", "ApusSplit", "ApusTransport",
                           .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: releaseSettings
        ),
        // Wire formats: KServe v2 JSON (+ binary extension), Apus protobuf, gzip/deflate.
        .target(
            name: "ApusWire",
            dependencies: ["ApusCore", "ApusInference", "ApusRuntime", "CZlib", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: releaseSettings
        ),
        .target(
            name: "ApusTransport",
            dependencies: [
                "ApusCore",
                "CNghttp2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: releaseSettings
        ),
        // The client library (h2c on nghttp2's client session): CLI, tests, load-test harness.
        .target(
            name: "ApusClient",
            dependencies: [
                "ApusCore", "ApusInference", "ApusRuntime", "ApusTransport", "ApusWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: releaseSettings
        ),
        .target(
            name: "ApusServer",
            dependencies: [
                "ApusCore",
                "ApusTransport",
                "ApusInference",
                "ApusSplit",
                "ApusMetrics",
                "ApusWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: releaseSettings
        ),
        .executableTarget(
            name: "apus",
            dependencies: [
                "ApusClient",
                "ApusServer",
                "ApusTransport",
                "ApusInference",
                "ApusHotSwap",
                "ApusSplit",
                "ApusRuntime",
                "ApusONNX",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: jemalloc + pgoLink
        ),
        // The load-test harness (loadtest/): a library (testable) and its executable.
        .target(
            name: "ApusLoadTest",
            dependencies: [
                "ApusCore", "ApusInference", "ApusRuntime", "ApusTransport", "ApusWire",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "loadtest/Sources/ApusLoadTest",
            swiftSettings: releaseSettings
        ),
        .executableTarget(
            name: "apus-loadtest",
            dependencies: [
                "ApusLoadTest", "ApusCore", "ApusInference", "ApusRuntime", "ApusTransport", "ApusWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "loadtest/Sources/apus-loadtest",
            linkerSettings: jemalloc + pgoLink
        ),
        // The README's Swift client example (run by the integration tests).
        .executableTarget(name: "example-client", dependencies: ["ApusClient", "ApusInference", "ApusRuntime"], path: "examples/swift"),
        // Fuzz targets for the two decoders and the HTTP/2 request rules (scripts/fuzz.sh); plain
        // builds are corpus runners.
        .executableTarget(name: "fuzz-json", dependencies: ["ApusWire", "ApusInference"], path: "Tests/Fuzz/FuzzJSON", exclude: ["kserve.dict"]),
        .executableTarget(name: "fuzz-protobuf", dependencies: ["ApusWire", "ApusInference"], path: "Tests/Fuzz/FuzzProtobuf"),
        .executableTarget(name: "fuzz-h2-headers", dependencies: ["ApusTransport"], path: "Tests/Fuzz/FuzzHTTP2Headers"),
        .testTarget(name: "ApusLoadTestTests", dependencies: ["ApusLoadTest", "ApusCore"]),
        .testTarget(name: "ApusCoreTests", dependencies: ["ApusCore"]),
        .testTarget(
            name: "ApusServerTests",
            dependencies: ["ApusServer", "ApusCore", "ApusInference", "ApusSplit", .product(name: "Logging", package: "swift-log")],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "ApusRuntimeTests",
            dependencies: ["ApusRuntime", "ApusONNX"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "ApusInferenceTests",
            dependencies: ["ApusCore", "ApusInference", "ApusRuntime", "ApusONNX", .product(name: "Logging", package: "swift-log"),
                           .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "ApusHotSwapTests", dependencies: ["ApusHotSwap", "ApusInference", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ApusWireTests", dependencies: ["ApusWire", "ApusCore", "ApusInference", "ApusRuntime",
                                                           .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .testTarget(name: "ApusMetricsTests", dependencies: ["ApusMetrics", "ApusInference", "ApusRuntime"]),
        .testTarget(name: "ApusSplitTests", dependencies: ["ApusSplit", "ApusInference", "ApusCore", "ApusRuntime"]),
        .testTarget(
            name: "ApusTransportTests",
            dependencies: [
                "ApusCore", "ApusTransport", "ApusServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
