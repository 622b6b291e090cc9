// The fields of an OpenAI images request, read the same way whether they came as JSON
// (generations) or as multipart text parts (edits, where the `openai` client sends numbers as
// decimal text and booleans as `true` / `false`). Every wrong type is a 400 naming the field.
import Foundation

/// One value of a JSON body, kept with its JSON type so a string where a number belongs is refused
/// rather than guessed at.
enum JSONFieldValue: Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    /// An array or object: no OpenAI images field the server reads is one.
    case structured

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let u = try? c.decode(UInt64.self) { self = .unsigned(u) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .structured }
    }
}

/// The named fields of a request. A field that is absent (or JSON `null`) reads as nil.
struct OpenAIFields {
    enum Storage {
        case json([String: JSONFieldValue])
        /// Multipart text parts: the first part of each name.
        case form([String: String])
    }

    let storage: Storage

    /// A JSON body that must be an object.
    static func json(_ bytes: some Collection<UInt8>) throws(APIError) -> OpenAIFields {
        let data = Data(bytes)
        guard !data.isEmpty else { throw .openAI("the request body is empty; send a JSON object with at least \"prompt\"", param: nil, code: "invalid_json") }
        do {
            return OpenAIFields(storage: .json(try JSONDecoder().decode([String: JSONFieldValue].self, from: data)))
        } catch DecodingError.typeMismatch {
            throw .openAI("the body must be a JSON object", param: nil, code: "invalid_json")
        } catch {
            throw .openAI("the body is not valid JSON", param: nil, code: "invalid_json")
        }
    }

    func string(_ key: String) throws(APIError) -> String? {
        switch storage {
        case let .json(values):
            switch values[key] ?? .null {
            case .null: return nil
            case let .string(s): return s
            default: throw Self.typeError(key, "a string")
            }
        case let .form(values):
            return values[key]
        }
    }

    func int(_ key: String) throws(APIError) -> Int? {
        switch storage {
        case let .json(values):
            switch values[key] ?? .null {
            case .null: return nil
            case let .integer(i): if let v = Int(exactly: i) { return v }
            case let .number(d): if d.rounded() == d, let v = Int(exactly: d) { return v }
            default: break
            }
        case let .form(values):
            guard let text = values[key] else { return nil }
            if let v = Int(text.trimmingCharacters(in: .whitespaces)) { return v }
        }
        throw Self.typeError(key, "an integer")
    }

    func double(_ key: String) throws(APIError) -> Double? {
        switch storage {
        case let .json(values):
            switch values[key] ?? .null {
            case .null: return nil
            case let .integer(i): return Double(i)
            case let .unsigned(u): return Double(u)
            case let .number(d): return d
            default: break
            }
        case let .form(values):
            guard let text = values[key] else { return nil }
            if let v = Double(text.trimmingCharacters(in: .whitespaces)), v.isFinite { return v }
        }
        throw Self.typeError(key, "a number")
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        switch storage {
        case let .json(values):
            switch values[key] ?? .null {
            case .null: return nil
            case let .bool(b): return b
            default: break
            }
        case let .form(values):
            guard let text = values[key] else { return nil }
            switch text.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "1": return true
            case "false", "0": return false
            default: break
            }
        }
        throw Self.typeError(key, "true or false")
    }

    /// A seed: an integer in UInt64's range; absent or negative (-1) means random (nil), as natively.
    func seed(_ key: String) throws(APIError) -> UInt64? {
        switch storage {
        case let .json(values):
            switch values[key] ?? .null {
            case .null: return nil
            case let .integer(i): return i < 0 ? nil : UInt64(i)
            case let .unsigned(u): return u
            default: break
            }
        case let .form(values):
            guard let raw = values[key] else { return nil }
            let text = raw.trimmingCharacters(in: .whitespaces)
            if let u = UInt64(text) { return u }
            if let i = Int64(text) { return i < 0 ? nil : UInt64(i) }
        }
        throw Self.typeError(key, "an integer (-1 or absent: random)")
    }

    static func typeError(_ key: String, _ expected: String) -> APIError {
        .openAI("\(key): expected \(expected)", param: key, code: "invalid_type")
    }
}
