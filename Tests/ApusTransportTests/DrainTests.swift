import ApusCore
import ApusTransport
import Foundation
import Logging
import NIOCore
import XCTest

/// Holds every request until the test opens the gate, so "in flight" is exact, not timed.
final class GateResponder: Responder {
    /// `Locked`, not `Mutex`: the thread sanitizer does not see Mutex's futex lock on Linux and
    /// reported the two event loops' appends as a race.
    private let parked = Locked<[ResponseWriter]>([])
    private let arrivals: AsyncStream<Int>.Continuation
    let arrivalStream: AsyncStream<Int>

    init() {
        (arrivalStream, arrivals) = AsyncStream<Int>.makeStream()
    }

    func respond(to request: Request, context: RequestContext, writer: ResponseWriter) {
        let count = parked.withLock { parked in
            parked.append(writer)
            return parked.count
        }
        arrivals.yield(count)
    }

    func openGate() {
        let writers = parked.withLock { parked in
            defer { parked.removeAll() }
            return parked
        }
        // Answer from another thread, as a worker pool would.
        DispatchQueue.global().async {
            for writer in writers { writer.complete(.text(200, "released")) }
        }
    }
}

final class DrainTests: XCTestCase {
    func runCurl(_ arguments: [String]) throws -> (process: Process, output: Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "20"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, output)
    }

    func testDrainLetsInFlightRequestsFinishOverBothHTTPVersionsThenRefusesNewConnections() async throws {
        let gate = GateResponder()
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.threads = 2
        let server = HTTPServer(configuration: configuration, responder: gate, logger: Logger(label: "test"))
        let port = try await server.start()
        let url = "http://127.0.0.1:\(port)/slow"

        let clients = [
            try runCurl(["--http2-prior-knowledge", url]),
            try runCurl(["--http2-prior-knowledge", url]),
            try runCurl(["--http1.1", url]),
        ]
        var iterator = gate.arrivalStream.makeAsyncIterator()
        while let count = await iterator.next(), count < clients.count {}

        async let drained: Void = server.drain(timeout: .seconds(10))
        // The listener closes first: once a new connection is refused, draining is under way.
        try await waitUntilRefused(port: port)
        gate.openGate()
        await drained

        for (process, output) in clients {
            process.waitUntilExit()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertEqual(text, "released\n200", "an in-flight request failed during drain")
        }
        XCTAssertEqual(server.stats.currentConnections, 0)
        await server.shutdown()
    }

    func testDrainForceClosesWhatIsLeftAfterTheTimeout() async throws {
        let gate = GateResponder()
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.threads = 1
        let server = HTTPServer(configuration: configuration, responder: gate, logger: Logger(label: "test"))
        let port = try await server.start()
        let client = try runCurl(["--http2-prior-knowledge", "http://127.0.0.1:\(port)/never"])
        var iterator = gate.arrivalStream.makeAsyncIterator()
        _ = await iterator.next()

        let started = ContinuousClock.now
        await server.drain(timeout: .milliseconds(300))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        client.process.waitUntilExit()
        XCTAssertEqual(server.stats.currentConnections, 0)
        gate.openGate()
        await server.shutdown()
    }

    func waitUntilRefused(port: Int) async throws {
        for _ in 0..<500 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rv = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rv != 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTFail("listener still accepting after drain started")
    }
}
