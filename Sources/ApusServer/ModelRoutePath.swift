#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `/v2/models/{m}[/versions/{v}|/labels/{l}][/{action}]`, parsed from the path's UTF-8 bytes in
/// one pass: the model routes run this on every request, and splitting into `[String]` (or
/// walking `Substring`s) cost more than the rest of the routing.
///
/// Empty segments count (a trailing slash is a different route, as with
/// `split(omittingEmptySubsequences: false)`). Value type.
struct ModelRoutePath: Equatable {
    enum Action: Equatable {
        case none, infer, ready, feedback, canary, split
        /// A segment no route knows.
        case other
    }

    enum Selector: Equatable {
        /// The raw text after `/versions/` (checked to be a number by the route).
        case version(String)
        case label(String)
    }

    var model: String
    var selector: Selector?
    var action: Action
    /// More segments after the action: no route has them.
    var hasExtra: Bool

    /// Nil when the path has no model segment (or is not under `/v2/models/`).
    init?(_ path: String) {
        var path = path
        guard let parsed = path.withUTF8({ Self.parse($0) }) else { return nil }
        self = parsed
    }

    private init(model: String, selector: Selector?, action: Action, hasExtra: Bool) {
        self.model = model
        self.selector = selector
        self.action = action
        self.hasExtra = hasExtra
    }

    private static let prefix: StaticString = "/v2/models/"

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> ModelRoutePath? {
        let prefixCount = prefix.utf8CodeUnitCount
        guard bytes.count > prefixCount, equal(bytes, 0..<prefixCount, prefix) else { return nil }
        var position = prefixCount
        // The next segment's byte range, or nil after the last one.
        func next() -> Range<Int>? {
            guard position <= bytes.count else { return nil }
            let start = position
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "/") { end += 1 }
            position = end + 1
            return start..<end
        }
        guard let modelRange = next(), !modelRange.isEmpty else { return nil }
        let model = string(bytes, modelRange)
        var selector: Selector?
        var actionRange = next()
        if let range = actionRange {
            let isVersion = equal(bytes, range, "versions")
            if isVersion || equal(bytes, range, "labels"), let valueRange = next() {
                let value = string(bytes, valueRange)
                selector = isVersion ? .version(value) : .label(value)
                actionRange = next()
            }
        }
        let action: Action
        if let range = actionRange {
            action = equal(bytes, range, "infer") ? .infer
                : equal(bytes, range, "ready") ? .ready
                : equal(bytes, range, "feedback") ? .feedback
                : equal(bytes, range, "canary") ? .canary
                : equal(bytes, range, "split") ? .split
                : .other
        } else {
            action = .none
        }
        return ModelRoutePath(model: model, selector: selector, action: action, hasExtra: next() != nil)
    }

    private static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount, let base = bytes.baseAddress else { return false }
        return memcmp(base + range.lowerBound, literal.utf8Start, range.count) == 0
    }
}
