/// Arrays of plain values (bytes, floats) written through a pointer, for the per-request codec
/// paths.
///
/// Why not `Array(unsafeUninitializedCapacity:)` alone: it allocates through a standard-library
/// entry point that is not specialised for the element type, which looks the array storage's
/// metadata up in the runtime's generic cache on every call: about 550 instructions per array
/// under callgrind, more than writing a whole 100-byte answer. Copying a buffer into a new array
/// is specialised and allocates directly. So small arrays are written into a stack buffer and
/// copied out once; large ones (where the lookup is noise and a second copy is not) take the
/// direct path. Stateless.
enum ArrayBuilder {
    /// Arrays of at most this many bytes are built on the stack.
    static let stackBytes = 2048

    /// An array of at most `capacity` values, of which `fill` initializes the first n and
    /// returns n (n <= capacity).
    @inline(__always)
    static func make<T: BitwiseCopyable>(capacity: Int, _ fill: (UnsafeMutableBufferPointer<T>) -> Int) -> [T] {
        guard capacity * MemoryLayout<T>.stride <= stackBytes else {
            return [T](unsafeUninitializedCapacity: capacity) { buffer, initialized in initialized = fill(buffer) }
        }
        return withUnsafeTemporaryAllocation(of: T.self, capacity: capacity) { buffer in
            let count = fill(buffer)
            return Array(UnsafeBufferPointer(rebasing: buffer[0..<count]))
        }
    }
}
