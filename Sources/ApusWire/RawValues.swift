/// Tensor contents sent as raw bytes (protobuf `raw_contents`, KServe's binary-data extension):
/// values laid out one after another, little-endian. Stateless.
enum RawValues {
    /// `count` values from `bytes`, copied into one new array: per-element loads (and, for
    /// floats, a second map from an integer array) cost extra allocations and a loop per
    /// request. `bytes` holds at least `count` values.
    static func littleEndian<T: BitwiseCopyable>(_ bytes: UnsafeRawBufferPointer, count: Int, as _: T.Type) -> [T] {
        let size = MemoryLayout<T>.size
        return ArrayBuilder.make(capacity: count) { (buffer: UnsafeMutableBufferPointer<T>) in
            let destination = UnsafeMutableRawBufferPointer(buffer)
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<(count * size)]))
            #if _endian(big)
            for start in stride(from: 0, to: count * size, by: size) {
                destination[start..<(start + size)].reverse()
            }
            #endif
            return count
        }
    }
}
