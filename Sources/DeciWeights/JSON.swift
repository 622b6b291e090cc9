// A small strict JSON reader for safetensors headers and shard indexes (strings are quoted by
// DeciJSON's `jsonQuoted`, shared with DeciImage).
// Written here rather than using Foundation's JSONSerialization so that integers stay exact
// (u64 offsets), duplicate keys are caught, and errors carry a byte offset.
import DeciJSON

/// A parsed JSON value; numbers keep their source text so integers can be read exactly.
enum JSONValue: Equatable, Sendable {
    case object([JSONMember])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// The kind of value, for error messages.
    var typeName: String {
        switch self {
        case .object: "object"
        case .array: "array"
        case .string: "string"
        case .number: "number"
        case .bool: "boolean"
        case .null: "null"
        }
    }

    /// A non-negative integer written without fraction or exponent, if it fits in UInt64.
    var exactUInt64: UInt64? {
        guard case .number(let text) = self, !text.isEmpty else { return nil }
        guard text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return UInt64(text)
    }

    /// Compact JSON text of this value (used to report non-string index metadata).
    var compactText: String {
        switch self {
        case .object(let members):
            return "{" + members.map { jsonQuoted($0.key) + ":" + $0.value.compactText }.joined(separator: ",") + "}"
        case .array(let items): return "[" + items.map(\.compactText).joined(separator: ",") + "]"
        case .string(let s): return jsonQuoted(s)
        case .number(let t): return t
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }
}

/// One `"key": value` pair, in source order.
struct JSONMember: Equatable, Sendable {
    var key: String
    var value: JSONValue
}

struct JSONParseError: Error {
    var offset: Int
    var message: String
}

/// Parses one JSON value spanning all of `bytes` (surrounding whitespace allowed). The bytes must
/// already be valid UTF-8.
func parseJSON(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
    var parser = JSONParser(bytes: bytes)
    parser.skipWhitespace()
    let value = try parser.parseValue(depth: 0)
    parser.skipWhitespace()
    if parser.pos != bytes.count {
        throw JSONParseError(offset: parser.pos, message: "unexpected data after the JSON value")
    }
    return value
}

/// Whether `bytes` is well-formed UTF-8 (no overlongs, surrogates or out-of-range scalars).
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var iterator = bytes.makeIterator()
    var decoder = UTF8()
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}

private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var pos = 0
    static let maxDepth = 128

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    func fail(_ message: String) -> JSONParseError { JSONParseError(offset: pos, message: message) }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth)") }
        guard pos < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character '\(printable(bytes[pos]))'")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let n = literal.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw fail("unexpected end of input") }
        for i in 0..<n where bytes[pos + i] != literal.utf8Start[i] {
            throw fail("invalid literal")
        }
        pos += n
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        pos += 1
        var members: [JSONMember] = []
        var seen = Set<String>()
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyOffset = pos
            let key = try parseString()
            guard seen.insert(key).inserted else {
                throw JSONParseError(offset: keyOffset, message: "duplicate key \"\(key)\"")
            }
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            pos += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unexpected end of input in object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        pos += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unexpected end of input in array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = pos
        func digit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        guard pos < bytes.count, digit(bytes[pos]) else { throw fail("invalid number") }
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
        } else {
            while pos < bytes.count, digit(bytes[pos]) { pos += 1 }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard pos < bytes.count, digit(bytes[pos]) else { throw fail("invalid number") }
            while pos < bytes.count, digit(bytes[pos]) { pos += 1 }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard pos < bytes.count, digit(bytes[pos]) else { throw fail("invalid number") }
            while pos < bytes.count, digit(bytes[pos]) { pos += 1 }
        }
        return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self))
    }

    mutating func parseString() throws(JSONParseError) -> String {
        pos += 1  // opening quote
        var result = ""
        var runStart = pos
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                result += String(decoding: UnsafeRawBufferPointer(rebasing: bytes[runStart..<pos]), as: UTF8.self)
                pos += 1
                return result
            }
            if b < 0x20 { throw fail("unescaped control character in string") }
            if b != UInt8(ascii: "\\") { pos += 1; continue }
            result += String(decoding: UnsafeRawBufferPointer(rebasing: bytes[runStart..<pos]), as: UTF8.self)
            pos += 1
            guard pos < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): result += "\""
            case UInt8(ascii: "\\"): result += "\\"
            case UInt8(ascii: "/"): result += "/"
            case UInt8(ascii: "b"): result += "\u{08}"
            case UInt8(ascii: "f"): result += "\u{0C}"
            case UInt8(ascii: "n"): result += "\n"
            case UInt8(ascii: "r"): result += "\r"
            case UInt8(ascii: "t"): result += "\t"
            case UInt8(ascii: "u"):
                let high = try parseHex4()
                var scalarValue = high
                if (0xD800..<0xDC00).contains(high) {
                    guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate escape")
                    }
                    pos += 2
                    let low = try parseHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid low surrogate escape") }
                    scalarValue = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(high) {
                    throw fail("unpaired surrogate escape")
                }
                guard let scalar = Unicode.Scalar(scalarValue) else { throw fail("invalid \\u escape") }
                result.unicodeScalars.append(scalar)
            default:
                pos -= 1
                throw fail("invalid escape '\\\(printable(e))'")
            }
            runStart = pos
        }
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    func printable(_ b: UInt8) -> String {
        (0x20..<0x7F).contains(b) ? String(UnicodeScalar(b)) : "\\x" + String(b, radix: 16)
    }
}
