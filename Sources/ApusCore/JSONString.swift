/// JSON string quoting (RFC 8259 section 7), shared by every hand-written JSON body.
public enum JSONString {
    /// `s` as a JSON string literal, quotes included: `"`, `\` and the control characters
    /// U+0000-U+001F are escaped, everything else is copied as it is (JSON text is UTF-8).
    ///
    /// Works on the UTF-8 bytes in two passes (count the escapes, then write into a string of the
    /// exact size): every error answer quotes its message, and rejecting a request under overload
    /// must stay cheap. Appending scalar by scalar cost more than the rest of a 404.
    public static func quote(_ s: String) -> String {
        var s = s
        return s.withUTF8 { bytes in
            // Extra bytes beyond the one each input byte takes.
            var extra = 0
            for byte in bytes where needsEscape(byte) { extra += escape(byte).count - 1 }
            return String(unsafeUninitializedCapacity: bytes.count + extra + 2) { out in
                guard let base = out.baseAddress else { return 0 }
                return write(bytes, quotedTo: base)
            }
        }
    }

    /// The most bytes `write(_:quotedTo:)` writes for `s`: every byte escaped as `\u00XX`.
    public static func maxQuotedCount(_ s: String) -> Int { s.utf8.count * 6 + 2 }

    /// Writes `s` as a JSON string literal, quotes included, with `quote`'s escapes, at `out`,
    /// which has room for `maxQuotedCount(s)` bytes; returns the bytes written. For text written
    /// straight into a byte buffer (the access log), with no String built.
    public static func write(_ s: String, quotedTo out: UnsafeMutablePointer<UInt8>) -> Int {
        var s = s
        return s.withUTF8 { write($0, quotedTo: out) }
    }

    /// Runs of bytes that need no escape are copied whole; the scan for the next escape reads
    /// eight bytes at a time (most texts have none).
    private static func write(_ bytes: UnsafeBufferPointer<UInt8>, quotedTo out: UnsafeMutablePointer<UInt8>) -> Int {
        out[0] = UInt8(ascii: "\"")
        var n = 1, start = 0, i = 0
        guard let base = bytes.baseAddress else {
            out[1] = UInt8(ascii: "\"")
            return 2
        }
        func copyRun(upTo end: Int) {
            guard end > start else { return }
            (out + n).update(from: base + start, count: end - start)
            n += end - start
        }
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        while i < bytes.count {
            if i + 8 <= bytes.count {
                let word = UnsafeRawPointer(base).loadUnaligned(fromByteOffset: i, as: UInt64.self)
                // A byte under 0x20, or equal to '"' or '\\' (a zero byte once xor-ed with it),
                // sets its high bit here; none set: no escape among the eight.
                let quote = word ^ (ones &* 0x22), backslash = word ^ (ones &* 0x5C)
                let found = ((word &- ones &* 0x20) | (quote &- ones) | (backslash &- ones)) & ~word & highs
                if found == 0 {
                    i += 8
                    continue
                }
            }
            if needsEscape(bytes[i]) {
                copyRun(upTo: i)
                for e in escape(bytes[i]) { out[n] = e; n += 1 }
                start = i + 1
            }
            i += 1
        }
        copyRun(upTo: bytes.count)
        out[n] = UInt8(ascii: "\"")
        return n + 1
    }

    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// The escape sequence of a byte that needs one (`"`, `\`, or a control character).
    private static func escape(_ byte: UInt8) -> EscapeSequence {
        switch byte {
        case UInt8(ascii: "\""): return EscapeSequence(UInt8(ascii: "\\"), UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): return EscapeSequence(UInt8(ascii: "\\"), UInt8(ascii: "\\"))
        case UInt8(ascii: "\n"): return EscapeSequence(UInt8(ascii: "\\"), UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): return EscapeSequence(UInt8(ascii: "\\"), UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): return EscapeSequence(UInt8(ascii: "\\"), UInt8(ascii: "t"))
        default: return EscapeSequence(unicode: byte)
        }
    }

    /// Up to six ASCII bytes (`\u00XX` is the longest), without an allocation.
    private struct EscapeSequence: Sequence, IteratorProtocol {
        private var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
        let count: Int
        private var position = 0

        init(_ a: UInt8, _ b: UInt8) {
            bytes = (a, b, 0, 0, 0, 0)
            count = 2
        }

        init(unicode byte: UInt8) {
            func hex(_ d: UInt8) -> UInt8 { d < 10 ? UInt8(ascii: "0") + d : UInt8(ascii: "a") + d - 10 }
            bytes = (UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex(byte >> 4), hex(byte & 0xF))
            count = 6
        }

        mutating func next() -> UInt8? {
            guard position < count else { return nil }
            defer { position += 1 }
            return withUnsafeBytes(of: bytes) { $0[position] }
        }
    }
}
