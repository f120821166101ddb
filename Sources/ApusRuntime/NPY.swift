import Foundation

/// Reads NumPy `.npy` files (little-endian f4, f8, i4, i8, b1; C order): reference samples in
/// bundles, benchmark inputs, test fixtures. Stateless.
public enum NPY {
    public static func read(_ url: URL) throws -> Tensor {
        try decode([UInt8](try Data(contentsOf: url)), name: url.lastPathComponent)
    }

    public static func decode(_ bytes: [UInt8], name: String = "npy") throws -> Tensor {
        func fail(_ message: String) -> RuntimeError { RuntimeError("\(name): \(message)") }
        guard bytes.count > 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else { throw fail("not an npy file") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard bytes.count >= headerStart + headerLength else { throw fail("truncated header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard !header.contains("'fortran_order': True") else { throw fail("fortran order is not supported") }
        guard let descrRange = header.range(of: "'descr': '"), let descrEnd = header[descrRange.upperBound...].firstIndex(of: "'") else {
            throw fail("no descr in header")
        }
        let descr = String(header[descrRange.upperBound..<descrEnd])
        guard let shapeStart = header.range(of: "'shape': ("), let shapeEnd = header[shapeStart.upperBound...].firstIndex(of: ")") else {
            throw fail("no shape in header")
        }
        let shape = header[shapeStart.upperBound..<shapeEnd].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let body = Array(bytes[(headerStart + headerLength)...])
        // Checked: the header is the file's word, and an overflowing product would trap.
        guard let count = Tensor.elementCount(shape) else { throw fail("shape \(shape) is invalid") }
        let size: Int
        switch descr {
        case "<f4", "<i4": size = 4
        case "<f8", "<i8": size = 8
        case "|b1": size = 1
        default: throw fail("dtype \(descr) is not supported (use float32, float64, int32, int64 or bool)")
        }
        guard shape.allSatisfy({ $0 >= 0 }), count <= body.count / max(size, 1) + 1, body.count >= count * size else { throw fail("\(body.count) data bytes for shape \(shape)") }
        func load<T>(_: T.Type) -> [T] {
            body.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) } }
        }
        switch descr {
        case "<f4": return try Tensor(shape: shape, data: .float32(load(Float.self)))
        case "<f8": return try Tensor(shape: shape, data: .float64(load(Double.self)))
        case "<i8": return try Tensor(shape: shape, data: .int64(load(Int64.self)))
        case "<i4": return try Tensor(shape: shape, data: .int32(load(Int32.self)))
        case "|b1": return try Tensor(shape: shape, data: .bool(load(UInt8.self).map { $0 != 0 }))
        default: throw fail("dtype \(descr) is not supported")
        }
    }

    /// A float32 tensor as an `.npy` file (format 1.0, little-endian, C order).
    public static func encode(_ tensor: Tensor) throws -> [UInt8] {
        let values = try tensor.floats()
        let shapeText = tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so the data starts on a 64-byte boundary, ending the header with a newline.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let length = header.utf8.count
        out += [UInt8(length & 0xff), UInt8(length >> 8)]
        out += Array(header.utf8)
        values.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }
}
