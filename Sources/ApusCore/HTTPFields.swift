/// An ordered list of HTTP header fields with lower-cased names.
///
/// Invariant: every stored name is lower case (HTTP/2 requires it on the wire and HTTP/1.1 names
/// are case-insensitive), so lookups compare bytes directly. Value type; safe to share across
/// threads.
public struct HTTPFields: Sendable, Equatable, Sequence {
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public private(set) var fields: [Field]
    /// Bit `n % 64` is set when a field whose name is n bytes long is present. Most lookups on
    /// the request path are for fields a request does not carry (timeouts, routing key, encodings),
    /// and a name of a length no field has is answered without scanning the list. Derived from
    /// `fields` alone (kept by every mutation), so it never makes two equal lists differ.
    private var nameLengths: UInt64 = 0

    public init() { self.fields = [] }

    /// Empty, with room for `capacity` fields (a response that gains a few headers on its way
    /// out allocates once).
    public init(capacity: Int) {
        self.fields = []
        self.fields.reserveCapacity(capacity)
    }

    public init(_ pairs: [(String, String)]) {
        self.fields = []
        self.fields.reserveCapacity(pairs.count)
        for (name, value) in pairs { self.add(name: name, value: value) }
    }

    /// Appends a field, lower-casing its name.
    public mutating func add(name: String, value: String) {
        let lower = Self.lowercased(name)
        nameLengths |= Self.lengthBit(lower)
        fields.append(Field(name: lower, value: value))
    }

    /// Appends a field whose name the caller guarantees is already lower case (HTTP/2).
    public mutating func appendLowercased(name: String, value: String) {
        nameLengths |= Self.lengthBit(name)
        fields.append(Field(name: name, value: value))
    }

    /// Replaces every field called `name` with one field.
    public mutating func replaceOrAdd(name: String, value: String) {
        let lower = Self.lowercased(name)
        fields.removeAll { $0.name == lower }
        fields.append(Field(name: lower, value: value))
        nameLengths = fields.reduce(0) { $0 | Self.lengthBit($1.name) }
    }

    /// The first value of the field called `name` (case-insensitive), if any.
    public subscript(_ name: String) -> String? {
        if let value = self[lowercased: name] { return value }
        guard Self.hasUppercase(name) else { return nil }
        return self[lowercased: name.lowercased()]
    }

    /// The first value of the field called `name`, which the caller guarantees is lower case
    /// (a literal): no case scan of `name`. The request path looks up half a dozen usually
    /// absent fields per request, and scanning each name for capitals cost more than the lookup.
    public subscript(lowercased name: String) -> String? {
        // Lengths before contents: a native string's UTF-8 count is stored, and comparing two
        // different long names went through the standard library's slow path.
        let length = name.utf8.count
        guard nameLengths & Self.lengthBit(length) != 0 else { return nil }
        for field in fields where field.name.utf8.count == length && field.name == name { return field.value }
        return nil
    }

    public var count: Int { fields.count }

    public static func == (a: HTTPFields, b: HTTPFields) -> Bool { a.fields == b.fields }

    private static func lengthBit(_ name: String) -> UInt64 { lengthBit(name.utf8.count) }

    private static func lengthBit(_ length: Int) -> UInt64 { 1 << UInt64(length & 63) }

    /// Room for `n` fields without regrowing (one allocation instead of four for a typical request).
    public mutating func reserveCapacity(_ n: Int) { fields.reserveCapacity(n) }

    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }

    private static func lowercased(_ name: String) -> String {
        // Fast path: most names arrive already lower case.
        hasUppercase(name) ? name.lowercased() : name
    }

    /// Whether `name` has an ASCII upper-case letter, scanning its bytes in place (the generic
    /// `utf8.allSatisfy` was 2% of a request, called for every lookup of an absent header).
    private static func hasUppercase(_ name: String) -> Bool {
        // Native strings lend their bytes in place; no copy of the string is made.
        let scanned = name.utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes where byte &- 0x41 < 26 { return true }
            return false
        }
        return scanned ?? name.utf8.contains { $0 &- 0x41 < 26 }
    }
}
