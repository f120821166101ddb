import ApusCore
@testable import ApusTransport
import XCTest

final class HTTP1ConnectionStateMachineTests: XCTestCase {
    typealias Machine = HTTP1ConnectionStateMachine
    let ms: Int64 = 1_000_000

    func limits(_ configure: (inout TransportLimits) -> Void = { _ in }) -> TransportLimits {
        var limits = TransportLimits()
        configure(&limits)
        return limits
    }

    func head(_ machine: inout Machine, headers: [(String, String)] = [], keepAlive: Bool = true, now: Int64 = 0) -> Machine.Action? {
        machine.headReceived(method: "POST", target: "/x", version: .http1_1, headers: HTTPFields(headers), keepAlive: keepAlive, now: now)
    }

    func testRequestWithBodyDispatchesAtEnd() {
        var machine = Machine(limits: limits(), now: 0)
        XCTAssertNil(head(&machine))
        XCTAssertNil([UInt8(7), 8].withUnsafeBytes { machine.bodyReceived($0) })
        guard case .dispatch(let request, keepAlive: true)? = machine.endReceived() else { return XCTFail() }
        XCTAssertEqual(request.body, [7, 8])
        XCTAssertEqual(request.version, .http1_1)
    }

    func testExpectContinueIsAnsweredWith100AfterTheLimitsPassAndNeverToHTTP10() {
        var machine = Machine(limits: limits { $0.maxBodyBytes = 10 }, now: 0)
        XCTAssertEqual(head(&machine, headers: [("Expect", "100-continue"), ("content-length", "2")]), .sendContinue)
        XCTAssertNil([UInt8(7), 8].withUnsafeBytes { machine.bodyReceived($0) })
        guard case .dispatch? = machine.endReceived() else { return XCTFail() }
        var refused = Machine(limits: limits { $0.maxBodyBytes = 10 }, now: 0)
        guard case .respondWithErrorAndClose(413, _)? = head(&refused, headers: [("expect", "100-continue"), ("content-length", "11")]) else { return XCTFail() }
        var old = Machine(limits: limits(), now: 0)
        XCTAssertNil(old.headReceived(method: "POST", target: "/x", version: .http1_0, headers: HTTPFields([("expect", "100-continue")]), keepAlive: false, now: 0))
    }

    func testKeepAliveReturnsToIdleAndCloseCloses() {
        var machine = Machine(limits: limits(), now: 0)
        _ = head(&machine)
        _ = machine.endReceived()
        XCTAssertTrue(machine.keepAliveForResponse)
        XCTAssertNil(machine.responseSent(now: 1))
        _ = head(&machine, keepAlive: false)
        _ = machine.endReceived()
        XCTAssertFalse(machine.keepAliveForResponse)
        guard case .close? = machine.responseSent(now: 2) else { return XCTFail() }
    }

    func testTooManyHeadersOrBytesAre431() {
        var machine = Machine(limits: limits { $0.maxHeaderCount = 2 }, now: 0)
        guard case .respondWithErrorAndClose(431, _)? = head(&machine, headers: [("a", "1"), ("b", "2"), ("c", "3")]) else { return XCTFail() }
        var bytes = Machine(limits: limits { $0.maxHeaderListBytes = 10 }, now: 0)
        guard case .respondWithErrorAndClose(431, _)? = head(&bytes, headers: [("a", String(repeating: "x", count: 10))]) else { return XCTFail() }
    }

    func testBodyOverTheLimitIs413() {
        var machine = Machine(limits: limits { $0.maxBodyBytes = 4 }, now: 0)
        guard case .respondWithErrorAndClose(413, _)? = head(&machine, headers: [("content-length", "5")]) else { return XCTFail() }
        var streamed = Machine(limits: limits { $0.maxBodyBytes = 4 }, now: 0)
        XCTAssertNil(head(&streamed))
        guard case .respondWithErrorAndClose(413, _)? = [UInt8](repeating: 1, count: 5).withUnsafeBytes({ streamed.bodyReceived($0) }) else { return XCTFail() }
        XCTAssertNil(streamed.endReceived())
    }

    func testSlowHeadersAre408AfterTheHeaderTimeoutFromTheFirstByte() {
        var machine = Machine(limits: limits { $0.headerTimeoutNanos = 100 * ms; $0.idleTimeoutNanos = 10_000 * ms }, now: 0)
        XCTAssertNil(machine.tick(now: 500 * ms))
        machine.bytesReceived(now: 500 * ms)
        machine.bytesReceived(now: 550 * ms)
        XCTAssertNil(machine.tick(now: 599 * ms))
        guard case .respondWithErrorAndClose(408, _)? = machine.tick(now: 600 * ms) else { return XCTFail() }
    }

    func testSlowBodyIs408() {
        var machine = Machine(limits: limits { $0.bodyTimeoutNanos = 100 * ms }, now: 0)
        _ = head(&machine, now: 0)
        XCTAssertNil(machine.tick(now: 99 * ms))
        guard case .respondWithErrorAndClose(408, _)? = machine.tick(now: 100 * ms) else { return XCTFail() }
    }

    func testIdleConnectionCloses() {
        var machine = Machine(limits: limits { $0.idleTimeoutNanos = 100 * ms }, now: 0)
        XCTAssertNil(machine.tick(now: 99 * ms))
        guard case .close? = machine.tick(now: 100 * ms) else { return XCTFail() }
    }

    func testDrainClosesAnIdleConnectionAtOnceAndABusyOneAfterItsAnswer() {
        var idle = Machine(limits: limits(), now: 0)
        guard case .close? = idle.beginDrain() else { return XCTFail() }
        var busy = Machine(limits: limits(), now: 0)
        _ = head(&busy)
        _ = busy.endReceived()
        XCTAssertNil(busy.beginDrain())
        XCTAssertFalse(busy.keepAliveForResponse)
        guard case .close? = busy.responseSent(now: 1) else { return XCTFail() }
    }

    func testWriteStallCloses() {
        var machine = Machine(limits: limits { $0.writeStallTimeoutNanos = 100 * ms }, now: 0)
        machine.writabilityChanged(writable: false, now: 0)
        guard case .close? = machine.tick(now: 100 * ms) else { return XCTFail() }
    }
}
