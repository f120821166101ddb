import ApusCore
import Foundation

/// Decoding of the JSON that operators write (manifests, `model.json`) and send (splits, canary
/// policies) into `Decodable` settings, with errors that name the field.
///
/// Foundation's `JSONDecoder` reports a number that does not fit the field's integer type
/// (`"weight": 7500.5`, `"max_batch_size": 1e30`) as "The given data was not valid JSON." with no
/// field path, although the JSON is valid. When that happens the document is parsed again and the
/// numbers that are not whole `Int`s are named instead.
///
/// Fields the settings do not have are refused, as Triton refuses them in its model config: a
/// misspelt `"window_seconds"` (for `window_s`) or `"max_batch_sise"` would otherwise be ignored
/// and leave the default in force without a word. Stateless; callable from any thread.
public enum ConfigJSON {
    /// Decodes `data` as `T`; throws `.badRequest` with "`what`: <reason naming the field>".
    public static func decode<T: Codable>(_ type: T.Type, from data: Data, what: String) throws -> T {
        let value: T
        do {
            value = try JSONDecoder().decode(type, from: data)
        } catch {
            throw ApusError(.badRequest, "\(what): \(describe(error, in: data))")
        }
        if let unknown = unknownFields(in: data, decoded: value), !unknown.isEmpty {
            let listed = unknown.prefix(4).joined(separator: ", ")
            throw ApusError(.badRequest, "\(what): unknown field\(unknown.count == 1 ? "" : "s") \(listed) (misspelt? see the documentation)")
        }
        return value
    }

    /// The fields of `data` that decoding did not read: what `value` encodes back is what its
    /// type knows (every settings type here encodes the keys it decodes), so a non-null member of
    /// the document missing from the re-encoding is unknown. Nil when either side is not JSON.
    static func unknownFields<T: Encodable>(in data: Data, decoded value: T) -> [String]? {
        guard let original = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
              let encoded = try? JSONEncoder().encode(value),
              let known = try? JSONSerialization.jsonObject(with: encoded, options: [.fragmentsAllowed]) else { return nil }
        var unknown: [String] = []
        func compare(_ given: Any, _ read: Any, _ path: String) {
            if let object = given as? [String: Any], let readObject = read as? [String: Any] {
                for (key, member) in object.sorted(by: { $0.key < $1.key }) where !(member is NSNull) {
                    let memberPath = path.isEmpty ? key : path + "." + key
                    if let readMember = readObject[key] {
                        compare(member, readMember, memberPath)
                    } else {
                        unknown.append(memberPath)
                    }
                }
            } else if let array = given as? [Any], let readArray = read as? [Any] {
                for (index, (element, readElement)) in zip(array, readArray).enumerated() {
                    compare(element, readElement, path + "[\(index)]")
                }
            }
        }
        compare(original, known, "")
        return unknown
    }

    /// A decoding error as "missing field a.b" / "field a.b: ...". With the document, a path-less
    /// "data corrupted" error of valid JSON names the numbers that are not whole numbers.
    static func describe(_ error: any Error, in data: Data? = nil) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing field \(path(context.codingPath + [key]))"
        case DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty:
            guard let data else { return context.debugDescription }
            let numbers: [(path: String, text: String)]
            switch numbersNotWhole(in: data) {
            case .success(let found): numbers = found
            case .failure(let syntax): return "not valid JSON: \(syntax)"
            }
            guard !numbers.isEmpty else { return context.debugDescription }
            let listed = numbers.prefix(4).map { "\($0.path) = \($0.text)" }.joined(separator: ", ")
            return "an integer field holds a number that is not a whole number within range: \(listed)"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context), DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? context.debugDescription : "field \(path(context.codingPath)): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    /// "variants[0].weight": array positions in brackets, as users read them.
    static func path(_ keys: [any CodingKey]) -> String {
        var text = ""
        for key in keys {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text
    }

    /// Every number in the document that no `Int` holds exactly, with its path (object keys in
    /// sorted order, so the message is the same on every run); if `data` is not JSON at all, where
    /// the parser stopped ("Invalid value around character 13.").
    static func numbersNotWhole(in data: Data) -> Result<[(path: String, text: String)], SyntaxError> {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            return .failure(SyntaxError(description: detail ?? "\(error)"))
        }
        var found: [(path: String, text: String)] = []
        func visit(_ value: Any, _ path: String) {
            if let object = value as? [String: Any] {
                for (key, member) in object.sorted(by: { $0.key < $1.key }) {
                    visit(member, path.isEmpty ? key : path + "." + key)
                }
            } else if let array = value as? [Any] {
                for (index, element) in array.enumerated() { visit(element, path + "[\(index)]") }
            } else if let number = value as? NSNumber {
                let double = number.doubleValue
                // 2^63 converts to a Double that no Int holds; Int(exactly:) says so.
                if Int(exactly: double) == nil { found.append((path.isEmpty ? "(document)" : path, "\(number)")) }
            }
        }
        visit(root, "")
        return .success(found)
    }

    /// The parser's account of a syntax error.
    struct SyntaxError: Error, CustomStringConvertible {
        var description: String
    }
}
