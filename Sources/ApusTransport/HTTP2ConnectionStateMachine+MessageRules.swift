/// HTTP/2's rules for a request's header block (RFC 9113 8.1.1, 8.2, 8.3), checked as each field
/// arrives. nghttp2's own checks are off (`nghttp2_option_set_no_http_messaging`): they ran on
/// every field a second time, beside this state machine's pass over the same bytes, and cost about
/// 2,000 instructions a request, a sixth of nghttp2's work. A request that breaks a rule is malformed and is
/// answered 400 with a message naming the field (RFC 9113 8.1.1 lets a server answer one before
/// it resets the stream); the connection and its other streams go on.
extension HTTP2ConnectionStateMachine {
    /// Bits of `HeaderBlock.seen`.
    enum PseudoField {
        static let method: UInt8 = 1
        static let scheme: UInt8 = 2
        static let authority: UInt8 = 4
        static let path: UInt8 = 8
        /// The `host` field, which counts like :authority and may appear once.
        static let host: UInt8 = 16
    }

    /// The classes a byte belongs to, as bits: what each kind of field allows.
    enum ByteClass {
        /// A field name: a token (RFC 9110 5.1) without capitals (RFC 9113 8.2.1).
        static let name: UInt8 = 1
        /// A method: a token, capitals allowed.
        static let method: UInt8 = 2
        /// A scheme (RFC 3986 3.1), after its first letter.
        static let scheme: UInt8 = 4
        /// An authority: host, port, userinfo and IP literals (RFC 3986 3.2).
        static let authority: UInt8 = 8
    }

    /// `ByteClass` bits of every byte value, built once.
    static let byteClasses: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 256)
        func mark(_ members: String, _ bits: UInt8) {
            for byte in members.utf8 { table[Int(byte)] |= bits }
        }
        let digits = "0123456789", lower = "abcdefghijklmnopqrstuvwxyz", upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        mark("!#$%&'*+-.^_`|~" + digits + lower, ByteClass.name | ByteClass.method)
        mark(upper, ByteClass.method)
        mark("+-." + digits + lower + upper, ByteClass.scheme)
        mark("-._~!$&'()*+,;=:@[]%" + digits + lower + upper, ByteClass.authority)
        return table
    }()

    /// Whether every byte of `bytes` is in `byteClass` (true for none). Branch-free: the classes
    /// of all bytes are and-ed, about three instructions a byte.
    static func all(_ bytes: UnsafeBufferPointer<UInt8>, are byteClass: UInt8) -> Bool {
        byteClasses.withUnsafeBufferPointer { table in
            var common: UInt8 = 0xFF
            for byte in bytes { common &= table[Int(byte)] }
            return common & byteClass != 0
        }
    }

    mutating func pseudoFieldReceived(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        // Request pseudo-header fields only, each once, all before the first regular field.
        // Length and second byte pick the candidate; one compare confirms it.
        let flag: UInt8, expected: StaticString
        switch (name.count, name.count > 1 ? name[1] : 0) {
        case (7, UInt8(ascii: "m")): (flag, expected) = (PseudoField.method, ":method")
        case (7, UInt8(ascii: "s")): (flag, expected) = (PseudoField.scheme, ":scheme")
        case (5, UInt8(ascii: "p")): (flag, expected) = (PseudoField.path, ":path")
        case (10, UInt8(ascii: "a")): (flag, expected) = (PseudoField.authority, ":authority")
        default: (flag, expected) = (0, "")
        }
        guard flag != 0, Self.equal(name, expected) else { return reject(400, "\(Self.printable(name)) is not a request pseudo-header field") }
        guard !block.regularSeen else { return reject(400, "pseudo-header field \(Self.printable(name)) comes after a regular field") }
        guard block.seen & flag == 0 else { return reject(400, "pseudo-header field \(Self.printable(name)) appears twice") }
        block.seen |= flag
        switch flag {
        case PseudoField.method:
            // The common methods are literals, valid tokens by construction: only others are scanned.
            if let known = Self.knownMethod(value) {
                block.method = known
                return
            }
            guard !value.isEmpty, Self.all(value, are: ByteClass.method) else { return reject(400, ":method \(Self.printable(value)) is not a token") }
            block.method = String(decoding: value, as: UTF8.self)
        case PseudoField.scheme:
            if Self.equal(value, "http") || Self.equal(value, "https") { return }
            guard let first = value.first, first > UInt8(ascii: "9"), Self.all(value, are: ByteClass.scheme) else {
                return reject(400, ":scheme \(Self.printable(value)) is not a URI scheme")
            }
        case PseudoField.path:
            // Origin form ("/...") or "*" (OPTIONS).
            guard let first = value.first, first == UInt8(ascii: "/") || (value.count == 1 && first == UInt8(ascii: "*")),
                  Self.noControlBytes(value, below: 0x21, tabAllowed: false) else {
                return reject(400, ":path \(Self.printable(value)) is not an origin-form path")
            }
            block.path = targets.string(value)
        default:
            // A client names the same authority on every request of a connection: the last one
            // that passed is kept, and the same bytes again need neither a scan nor a lookup.
            if let authority = validatedAuthority, Self.equal(value, string: authority) {
                block.fields.appendLowercased(name: "host", value: authority)
                return
            }
            guard !value.isEmpty, Self.all(value, are: ByteClass.authority) else {
                return reject(400, ":authority \(Self.printable(value)) is not a valid authority")
            }
            let authority = targets.string(value)
            validatedAuthority = authority
            block.fields.appendLowercased(name: "host", value: authority)
        }
    }

    mutating func regularFieldReceived(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        block.regularSeen = true
        // Known names (the ones most requests carry) are valid literals: only others are scanned.
        let known = HeaderStringCache.knownName(name)
        guard !name.isEmpty, known != nil || Self.all(name, are: ByteClass.name) else {
            return reject(400, "header field name \(Self.printable(name)) is not valid (HTTP/2 field names are lower-case tokens)")
        }
        guard Self.isValidValue(value) else {
            return reject(400, "header field \(Self.printable(name)) has a control character, or white space at an end of its value")
        }
        // Length and first byte pick the few names with rules; one compare confirms.
        switch (name.count, name[0]) {
        case (14, UInt8(ascii: "c")) where Self.equal(name, "content-length"):
            guard block.declaredLength == nil, let length = Self.decimal(value) else {
                return reject(400, "content-length \(Self.printable(value)) is not one non-negative decimal number")
            }
            block.declaredLength = length
        case (4, UInt8(ascii: "h")) where Self.equal(name, "host"):
            guard block.seen & PseudoField.host == 0 else { return reject(400, "header field host appears twice") }
            block.seen |= PseudoField.host
        case (6, UInt8(ascii: "e")) where Self.equal(name, "expect"):
            if value.count == 12, zip(value, "100-continue".utf8).allSatisfy({ $0 | 0x20 == $1 | 0x20 }) { block.expectsContinue = true }
        case (2, UInt8(ascii: "t")) where name[1] == UInt8(ascii: "e"):
            guard value.count == 8, zip(value, "trailers".utf8).allSatisfy({ $0 | 0x20 == $1 }) else {
                return reject(400, "te \(Self.printable(value)) is not allowed in HTTP/2 (only \"trailers\")")
            }
        case (10, UInt8(ascii: "c")) where Self.equal(name, "connection"), (10, UInt8(ascii: "k")) where Self.equal(name, "keep-alive"),
             (16, UInt8(ascii: "p")) where Self.equal(name, "proxy-connection"), (17, UInt8(ascii: "t")) where Self.equal(name, "transfer-encoding"),
             (7, UInt8(ascii: "u")) where Self.equal(name, "upgrade"):
            return reject(400, "connection-specific header field \(Self.printable(name)) is not allowed in HTTP/2")
        default: break
        }
        // Kept as strings: repeated names and values come back from the connection's cache.
        block.fields.appendLowercased(name: known ?? strings.string(name), value: strings.string(value))
    }

    /// A field value (RFC 9113 8.2.1): no NUL, CR, LF or other control bytes except tab, and no
    /// space or tab at either end.
    static func isValidValue(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = value.first, let last = value.last else { return true }
        return first != 0x20 && first != 0x09 && last != 0x20 && last != 0x09 && noControlBytes(value, below: 0x20, tabAllowed: true)
    }

    /// Whether `bytes` has no byte under `floor` (but a tab, when allowed) and no DEL (0x7F).
    /// Eight bytes at a time (values and paths are most of a block's bytes): a word with no such
    /// byte is fine; from a word that may hold one, the rest is checked byte by byte.
    static func noControlBytes(_ bytes: UnsafeBufferPointer<UInt8>, below floor: UInt8, tabAllowed: Bool) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let raw = UnsafeRawPointer(base)
        var i = 0
        // A byte under `floor` (<= 0x80): its high bit survives the subtraction of `floor` from
        // every byte and is clear in the word. DEL: a zero byte once xor-ed with 0x7F.
        func clean(_ word: UInt64) -> Bool {
            let del = word ^ (ones &* 0x7F)
            return ((word &- ones &* UInt64(floor)) & ~word & highs) | ((del &- ones) & ~del & highs) == 0
        }
        while i + 8 <= bytes.count {
            guard clean(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) else { break }
            i += 8
        }
        // Every whole word was clean and less than one is left: the final eight bytes, overlapping
        // checked ones, in one load.
        if i + 8 > bytes.count, i < bytes.count, bytes.count >= 8,
           clean(raw.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self)) { return true }
        while i < bytes.count {
            let byte = bytes[i]
            if (byte < floor && !(tabAllowed && byte == 0x09)) || byte == 0x7F { return false }
            i += 1
        }
        return true
    }

    /// What a complete block lacks to be a request (RFC 9113 8.3.1): :method, :scheme and :path,
    /// and an authority (:authority or host, as nghttp2 required).
    static func missingField(seen: UInt8) -> (status: Int, message: String)? {
        let required = PseudoField.method | PseudoField.scheme | PseudoField.path
        if seen & required != required {
            let name = seen & PseudoField.method == 0 ? ":method" : seen & PseudoField.scheme == 0 ? ":scheme" : ":path"
            return (400, "request lacks the \(name) pseudo-header field")
        }
        if seen & (PseudoField.authority | PseudoField.host) == 0 { return (400, "request names no authority (:authority or host)") }
        return nil
    }

    /// Bytes for an error message: printable ASCII as is, others as \xNN; long ones cut.
    static func printable(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var text = "\""
        for byte in bytes.prefix(64) {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return text + (bytes.count > 64 ? "...\"" : "\"")
    }
}
