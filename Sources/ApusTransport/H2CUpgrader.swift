import ApusCore
import Logging
import NIOCore
import NIOHTTP1

/// `Upgrade: h2c` (RFC 7540 section 3.2) for clients such as `curl --http2`: answers 101 and
/// replaces the HTTP/1 handlers with an `HTTP2ServerHandler` whose stream 1 is the upgrading request.
///
/// Only bodiless requests that list `upgrade` in Connection are upgraded (a body would have to
/// be replayed into stream 1); others are served over HTTP/1.1, which RFC 7540 allows.
struct H2CUpgrader: HTTPServerProtocolUpgrader, Sendable {
    /// The upgrade is declined and the request served over HTTP/1.1. NIO reports a declined
    /// upgrade through `errorCaught`, which otherwise closes the connection: the HTTP/1 handler
    /// lets this one pass (`curl --http2 -d ...` got an empty reply).
    struct Declined: Error, CustomStringConvertible {
        let reason: String
        var description: String { "h2c upgrade declined (\(reason)); served over HTTP/1.1" }
    }

    let supportedProtocol = "h2c"
    let requiredUpgradeHeaders = ["http2-settings"]
    let makeHandler: @Sendable (HTTP2ServerHandler.UpgradeRequest) -> HTTP2ServerHandler

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        // RFC 9110 7.8: an upgrade request lists "upgrade" in Connection. NIO's upgrade handler
        // does not insist; its HTTP parser does, and without it keeps parsing the bytes after
        // the request as HTTP/1.1 requests, which the upgrade then handed to the HTTP/2 handler
        // as parsed parts: the server trapped on the next read.
        let connectionOptions = upgradeRequest.headers[canonicalForm: "connection"].map { $0.lowercased() }
        guard connectionOptions.contains("upgrade") else {
            return channel.eventLoop.makeFailedFuture(Declined(reason: "Upgrade without \"upgrade\" in Connection"))
        }
        let hasBody = upgradeRequest.headers["transfer-encoding"].first != nil
            || (upgradeRequest.headers["content-length"].first.flatMap { Int($0) } ?? 0) > 0
        guard !hasBody else {
            return channel.eventLoop.makeFailedFuture(Declined(reason: "h2c upgrade with a request body"))
        }
        guard let settings = upgradeRequest.headers["http2-settings"].first, Base64URL.decode(settings) != nil else {
            return channel.eventLoop.makeFailedFuture(Declined(reason: "HTTP2-Settings is not valid base64url"))
        }
        return channel.eventLoop.makeSucceededFuture(initialResponseHeaders)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let payload = upgradeRequest.headers["http2-settings"].first.flatMap(Base64URL.decode) ?? []
        var fields = HTTPFields()
        for (name, value) in upgradeRequest.headers {
            let lower = name.lowercased()
            // Hop-by-hop fields of the upgrade belong to HTTP/1.1 only.
            if lower == "connection" || lower == "upgrade" || lower == "http2-settings" { continue }
            fields.add(name: lower, value: value)
        }
        let request = Request(method: upgradeRequest.method.rawValue, target: upgradeRequest.uri, headers: fields, version: .http2)
        let handler = makeHandler(HTTP2ServerHandler.UpgradeRequest(settingsPayload: payload, request: request))
        do {
            try context.pipeline.syncOperations.addHandler(handler, position: .after(context.handler))
            return context.eventLoop.makeSucceededVoidFuture()
        } catch {
            return context.eventLoop.makeFailedFuture(error)
        }
    }
}

/// RFC 4648 section 5 base64url, padding optional (HTTP2-Settings omits it).
enum Base64URL {
    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"), UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "_"), UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            accumulator = (accumulator << 6) | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xFF))
            }
        }
        return out
    }
}
