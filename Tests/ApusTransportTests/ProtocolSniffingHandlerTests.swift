@testable import ApusTransport
import NIOCore
import NIOEmbedded
import XCTest

/// The sniffer installs one protocol's handlers, once, and then only passes bytes through.
final class ProtocolSniffingHandlerTests: XCTestCase {
    /// Records what reaches it. On its first read it makes the channel read again, re-entrantly,
    /// as NIO does when a write fails while a read is being handled (it reads the socket to learn
    /// why): the sniffer is still in the pipeline then.
    final class ReentrantReader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var received: [String] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received.append(String(buffer: unwrapInboundIn(data)))
            if received.count == 1 {
                context.pipeline.syncOperations.fireChannelRead(NIOAny(ByteBuffer(string: "second")))
            }
        }
    }

    /// A channel whose sniffer installs `reader` and records each verdict it installs for.
    final class Harness {
        let channel = EmbeddedChannel()
        let reader = ReentrantReader()
        var installs: [PrefaceSniffer.Verdict] = []

        init() throws {
            let sniffer = ProtocolSniffingHandler(limits: TransportLimits()) { [unowned self] verdict, context in
                installs.append(verdict)
                try context.pipeline.syncOperations.addHandler(reader, position: .after(context.handler))
            }
            try channel.pipeline.syncOperations.addHandler(sniffer)
        }
    }

    func testAReadArrivingWhileTheBufferedBytesAreHandledPassesThroughWithoutASecondInstall() throws {
        let harness = try Harness()
        let (channel, reader) = (harness.channel, harness.reader)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        XCTAssertEqual(harness.installs, [.http1], "one install, for the first bytes")
        XCTAssertEqual(reader.received, ["GET / HTTP/1.1\r\n", "second"], "the re-entrant read follows the buffered bytes")
        // The sniffer has left: later reads reach the protocol's handler directly.
        try channel.writeInbound(ByteBuffer(string: "third"))
        XCTAssertEqual(reader.received.last, "third")
        XCTAssertNil(try? channel.pipeline.syncOperations.context(handlerType: ProtocolSniffingHandler.self))
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    func testAPrefaceSplitOverReadsInstallsHTTP2OnceWithAllItsBytes() throws {
        let harness = try Harness()
        let (channel, reader) = (harness.channel, harness.reader)
        let preface = PrefaceSniffer.preface
        try channel.writeInbound(ByteBuffer(bytes: preface[..<5]))
        XCTAssertEqual(harness.installs, [], "undecided after 5 bytes")
        try channel.writeInbound(ByteBuffer(bytes: preface[5...]))
        XCTAssertEqual(harness.installs, [.http2])
        XCTAssertEqual(reader.received, [String(decoding: preface, as: UTF8.self), "second"])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
