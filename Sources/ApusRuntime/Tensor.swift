/// A dense, row-major tensor. Value type: copies share storage until written (Swift arrays), so
/// passing tensors between steps and threads is cheap and safe.
///
/// Invariant: `shape.reduce(1, *) == data.count` (checked by `init(shape:data:)`).
public struct Tensor: Sendable, Equatable {
    public enum ElementType: String, Sendable, CaseIterable {
        case float32 = "FP32", float64 = "FP64", int64 = "INT64", int32 = "INT32", bool = "BOOL", string = "BYTES"
    }

    public enum Data: Sendable, Equatable {
        case float32([Float])
        case float64([Double])
        case int64([Int64])
        case int32([Int32])
        case bool([Bool])
        case string([String])

        public var count: Int {
            switch self {
            case .float32(let v): v.count
            case .float64(let v): v.count
            case .int64(let v): v.count
            case .int32(let v): v.count
            case .bool(let v): v.count
            case .string(let v): v.count
            }
        }

        public var elementType: ElementType {
            switch self {
            case .float32: .float32
            case .float64: .float64
            case .int64: .int64
            case .int32: .int32
            case .bool: .bool
            case .string: .string
            }
        }
    }

    public var shape: [Int]
    public var data: Data

    public init(shape: [Int], data: Data) throws {
        guard let expected = Self.elementCount(shape) else {
            throw RuntimeError("shape \(shape) has a negative dimension or more elements than an Int counts")
        }
        guard expected == data.count else {
            throw RuntimeError("shape \(shape) holds \(expected) elements but \(data.count) were given")
        }
        self.shape = shape
        self.data = data
    }

    /// The most elements a tensor from outside the process (a request, an answer, a bundle's
    /// declared input) may hold: 10^8 (proto-spec/PROTOCOL.md section 3).
    public static let maxElements = 100_000_000

    /// `elementCount(shape)`, provided the shape stays within `maxElements` with its empty
    /// dimensions counted as 1; nil otherwise. The second rule matters: [0, 10^9, 10^9] holds no
    /// elements, yet the width of its rows (the product of the dimensions after the first) is
    /// 10^18, and widths and row counts are computed from shapes everywhere.
    public static func boundedElementCount(_ shape: [Int]) -> Int? {
        guard let span = elementCount(shape.lazy.map { $0 == 0 ? 1 : $0 }), span <= maxElements else { return nil }
        return elementCount(shape)
    }

    /// Why `boundedElementCount(shape)` was nil, in the words every decoder uses.
    public static func overLimit(_ shape: [Int]) -> String {
        "shape \(shape) is over the limit of 10^8 elements (a 0 dimension counts as 1)"
    }

    /// The number of elements a tensor of `shape` holds; nil when a dimension is negative or the
    /// product overflows `Int`. Shapes arrive in requests, answers and bundle files, and a plain
    /// `reduce(1, *)` traps on overflow: one request with dimensions whose product passes 2^63
    /// ended the whole server. A zero dimension after an overflowing prefix still gives nil.
    public static func elementCount<Shape: Sequence<Int>>(_ shape: Shape) -> Int? {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    /// For kernels that computed a matching shape themselves.
    init(unchecked shape: [Int], _ data: Data) {
        self.shape = shape
        self.data = data
    }

    public var elementType: ElementType { data.elementType }
    public var count: Int { data.count }

    /// Rows for a [N, ...] tensor (1 for a vector or scalar).
    var rows: Int { shape.count >= 2 ? shape[0] : 1 }
    /// Elements per row.
    var rowWidth: Int { shape.count >= 2 ? shape.dropFirst().reduce(1, *) : count }

    /// The elements as Float, converting other numeric types (the kernels' working type).
    public func floats() throws -> [Float] {
        switch data {
        case .float32(let v): return v
        case .float64(let v): return v.map { Float($0) }
        case .int64(let v): return v.map { Float($0) }
        case .int32(let v): return v.map { Float($0) }
        case .bool(let v): return v.map { $0 ? 1 : 0 }
        case .string: throw RuntimeError("expected a numeric tensor, got strings")
        }
    }

    public func int64s() throws -> [Int64] {
        switch data {
        case .int64(let v): return v
        case .int32(let v): return v.map { Int64($0) }
        case .bool(let v): return v.map { $0 ? 1 : 0 }
        case .float32(let v): return v.map { Int64(exactly: $0.rounded(.towardZero)) ?? 0 }
        case .float64(let v): return v.map { Int64(exactly: $0.rounded(.towardZero)) ?? 0 }
        case .string: throw RuntimeError("expected a numeric tensor, got strings")
        }
    }
}

/// A runtime failure: bad model at load time, or inputs a kernel cannot take. The message names
/// the node and op (load) or the tensor (run).
public struct RuntimeError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Tensor {
    /// Rows `range` of a tensor whose first dimension is the batch.
    public func rows(_ range: Range<Int>) -> Tensor {
        var newShape = shape
        if newShape.isEmpty { newShape = [range.count] } else { newShape[0] = range.count }
        return rows(range, shape: newShape)
    }

    /// Rows `range`, given the slice's shape (this tensor's with `range.count` rows): a batch's
    /// requests share one shape array instead of allocating one each.
    public func rows(_ range: Range<Int>, shape newShape: [Int]) -> Tensor {
        assert(newShape.first == range.count && newShape.dropFirst().elementsEqual(shape.dropFirst()), "shape of a slice")
        let width = shape.count >= 1 ? shape.dropFirst().reduce(1, *) : 1
        let slice = (range.lowerBound * width)..<(range.upperBound * width)
        switch data {
        case .float32(let v): return Tensor(unchecked: newShape, .float32(Array(v[slice])))
        case .float64(let v): return Tensor(unchecked: newShape, .float64(Array(v[slice])))
        case .int64(let v): return Tensor(unchecked: newShape, .int64(Array(v[slice])))
        case .int32(let v): return Tensor(unchecked: newShape, .int32(Array(v[slice])))
        case .bool(let v): return Tensor(unchecked: newShape, .bool(Array(v[slice])))
        case .string(let v): return Tensor(unchecked: newShape, .string(Array(v[slice])))
        }
    }

    /// Stacks tensors along the first (batch) dimension; trailing dimensions must agree. Numeric
    /// tensors of different element types are stacked as float32.
    public static func concatenateRows(_ tensors: [Tensor]) throws -> Tensor {
        guard let first = tensors.first else { throw RuntimeError("nothing to concatenate") }
        if tensors.count == 1 { return first }
        let rank = first.shape.count
        var rows = 0
        var elements = 0
        var sameType = true
        for t in tensors {
            // Compared in place: a trailing-shape array per request was an allocation each.
            guard rank > 0, t.shape.count == rank else { throw RuntimeError("cannot batch shapes \(first.shape) and \(t.shape)") }
            for d in 1..<rank where t.shape[d] != first.shape[d] {
                throw RuntimeError("cannot batch shapes \(first.shape) and \(t.shape)")
            }
            rows += t.shape[0]
            elements += t.count
            if t.elementType != first.elementType { sameType = false }
        }
        var shape = first.shape
        shape[0] = rows
        switch first.data {
        case .int64 where sameType: return Tensor(unchecked: shape, .int64(try tensors.flatMap { try $0.int64s() }))
        case .float64 where sameType:
            return Tensor(unchecked: shape, .float64(tensors.flatMap { t -> [Double] in if case .float64(let v) = t.data { return v } else { return [] } }))
        case .float32 where sameType:
            // The serving path's case, once per batch: each request's row copied straight into
            // the batch (the general path below made an array per row and appended it, about 280
            // instructions a row). Uninitialized, not zeroed: every element is written, and one
            // generic allocation per batch costs less than clearing the batch first.
            let out = [Float](unsafeUninitializedCapacity: elements) { destination, initialized in
                guard let base = destination.baseAddress else { return }
                var offset = 0
                for t in tensors {
                    guard case .float32(let values) = t.data else { continue }
                    values.withUnsafeBufferPointer { source in
                        if let from = source.baseAddress { (base + offset).initialize(from: from, count: source.count) }
                    }
                    offset += values.count
                }
                initialized = offset
            }
            return Tensor(unchecked: shape, .float32(out))
        default:
            var out: [Float] = []
            out.reserveCapacity(elements)
            for t in tensors { out.append(contentsOf: try t.floats()) }
            return Tensor(unchecked: shape, .float32(out))
        }
    }
}
