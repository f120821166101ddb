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
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                extra += escape(byte).count - 1
            }
            return String(unsafeUninitializedCapacity: bytes.count + extra + 2) { out in
                var n = 0
                out[n] = UInt8(ascii: "\""); n += 1
                if extra == 0 {
                    for byte in bytes { out[n] = byte; n += 1 }
                } else {
                    for byte in bytes {
                        if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                            for e in escape(byte) { out[n] = e; n += 1 }
                        } else {
                            out[n] = byte; n += 1
                        }
                    }
                }
                out[n] = UInt8(ascii: "\""); n += 1
                return n
            }
        }
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
