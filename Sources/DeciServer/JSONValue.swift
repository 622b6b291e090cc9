// A JSON value that keeps its exact type (a number is never a boolean), for the compatibility APIs
// whose request bodies are loose dictionaries: every field optional, unknown keys kept (to echo
// or store) and ignored, wrong types refused naming the field.
import Foundation

enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .number(n):
            // Integral values as integers, so echoed seeds and sizes read back as ints.
            if n.rounded() == n, abs(n) < 9.0e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }

    /// A short description of the value's type for error messages.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    static func parseObject(_ bytes: some Collection<UInt8>) throws(FieldError) -> [String: JSONValue] {
        let data = Data(bytes)
        guard !data.isEmpty else { return [:] }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            throw FieldError(field: nil, "the body is not valid JSON")
        }
        guard case let .object(o) = value else { throw FieldError(field: nil, "the body must be a JSON object") }
        return o
    }
}

/// A request field that cannot be used, with the field's name.
struct FieldError: Error, CustomStringConvertible {
    var field: String?
    var message: String
    init(field: String?, _ message: String) { (self.field, self.message) = (field, message) }
    var description: String { field.map { "\($0): \(message)" } ?? message }
}

/// Typed, optional reads of a loose JSON object; `nil` for absent or null, an error naming the
/// field for a value of the wrong type.
struct JSONFields {
    var object: [String: JSONValue]
    /// A prefix for nested objects' field names in errors ("override_settings.").
    var prefix = ""

    subscript(_ key: String) -> JSONValue? {
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    func has(_ key: String) -> Bool { self[key] != nil }

    func fail(_ key: String, _ message: String) -> FieldError { FieldError(field: prefix + key, message) }

    func string(_ key: String) throws(FieldError) -> String? {
        switch self[key] {
        case nil: return nil
        case let .string(s)?: return s
        case let v?: throw fail(key, "expected a string, got \(v.typeName)")
        }
    }

    func double(_ key: String) throws(FieldError) -> Double? {
        switch self[key] {
        case nil: return nil
        case let .number(n)?: return n
        // pydantic (A1111) and form fields coerce numeric strings.
        case let .string(s)?:
            guard let n = Double(s.trimmingCharacters(in: .whitespaces)) else { throw fail(key, "expected a number, got \"\(s)\"") }
            return n
        case let v?: throw fail(key, "expected a number, got \(v.typeName)")
        }
    }

    func int(_ key: String) throws(FieldError) -> Int? {
        guard let n = try double(key) else { return nil }
        guard n.rounded() == n, abs(n) < 1e15 else { throw fail(key, "expected an integer, got \(n)") }
        return Int(n)
    }

    func bool(_ key: String) throws(FieldError) -> Bool? {
        switch self[key] {
        case nil: return nil
        case let .bool(b)?: return b
        case let .number(n)? where n == 0 || n == 1: return n == 1
        case let .string(s)? where ["true", "false"].contains(s.lowercased()): return s.lowercased() == "true"
        case let v?: throw fail(key, "expected true or false, got \(v.typeName)")
        }
    }

    func stringArray(_ key: String) throws(FieldError) -> [String]? {
        switch self[key] {
        case nil: return nil
        case let .array(a)?:
            var out: [String] = []
            for (i, v) in a.enumerated() {
                guard case let .string(s) = v else { throw fail("\(key)[\(i)]", "expected a string, got \(v.typeName)") }
                out.append(s)
            }
            return out
        case let v?: throw fail(key, "expected an array of strings, got \(v.typeName)")
        }
    }

    func nested(_ key: String) throws(FieldError) -> JSONFields? {
        switch self[key] {
        case nil: return nil
        case let .object(o)?: return JSONFields(object: o, prefix: prefix + key + ".")
        case let v?: throw fail(key, "expected an object, got \(v.typeName)")
        }
    }
}
