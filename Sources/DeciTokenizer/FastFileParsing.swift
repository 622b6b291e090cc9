import Foundation

// vocab.json and merges.txt hold ~49k entries each; Foundation's JSON decoding and Character-based string
// splitting take about a second for them, so both are parsed here straight from the UTF-8 bytes.

/// Token text as raw UTF-8 bytes, for dictionary keys. Not String: String equality is canonical
/// equivalence, and two equivalent spellings ("j" + U+030C and U+01F0) are different words to BPE.
/// Hashes the bytes in one call, which is several times faster than hashing an [UInt8] element-wise.
struct ByteString: Hashable, Sendable {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ text: String) { self.bytes = Array(text.utf8) }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}

/// Parses a JSON object whose values are all integers (vocab.json) into UTF-8 key bytes -> id. Later
/// duplicate keys win, as in Python's json module.
func parseTokenIDObject(_ bytes: [UInt8], path: String) throws -> [ByteString: Int32] {
    var i = 0
    let n = bytes.count
    func fail(_ what: String) -> TokenizerError {
        TokenizerError.invalidJSON(path: path, reason: "\(what) at byte \(i)")
    }
    func skipSpace() {
        while i < n, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }
    func hex4() throws -> UInt32 {
        guard i + 4 <= n else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("bad \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }
    func string() throws -> [UInt8] {
        guard i < n, bytes[i] == 0x22 else { throw fail("expected a string") }
        i += 1
        let start = i
        // Fast path: no escapes.
        while i < n, bytes[i] != 0x22, bytes[i] != 0x5C { i += 1 }
        guard i < n else { throw fail("unterminated string") }
        if bytes[i] == 0x22 {
            defer { i += 1 }
            return Array(bytes[start..<i])
        }
        var out = Array(bytes[start..<i])
        while i < n {
            let c = bytes[i]
            if c == 0x22 {
                i += 1
                return out
            }
            if c != 0x5C {
                out.append(c)
                i += 1
                continue
            }
            i += 1
            guard i < n else { break }
            let e = bytes[i]
            i += 1
            switch e {
            case 0x22, 0x5C, 0x2F: out.append(e)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                var v = try hex4()
                if (0xD800...0xDBFF).contains(v) {
                    guard i + 6 <= n, bytes[i] == 0x5C, bytes[i + 1] == 0x75 else { throw fail("lone surrogate") }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("bad surrogate pair") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(v) else { throw fail("lone surrogate") }
                out.append(contentsOf: Array(String(scalar).utf8))
            default:
                throw fail("bad escape")
            }
        }
        throw fail("unterminated string")
    }

    var result: [ByteString: Int32] = [:]
    result.reserveCapacity(n / 16)
    skipSpace()
    guard i < n, bytes[i] == 0x7B else { throw fail("expected an object") }
    i += 1
    skipSpace()
    if i < n, bytes[i] == 0x7D {
        i += 1
    } else {
        while true {
            skipSpace()
            let keyBytes = try string()
            var key: String { String(decoding: keyBytes, as: UTF8.self) }
            skipSpace()
            guard i < n, bytes[i] == 0x3A else { throw fail("expected ':'") }
            i += 1
            skipSpace()
            var negative = false
            if i < n, bytes[i] == 0x2D {
                negative = true
                i += 1
            }
            let digitsStart = i
            var value: Int64 = 0
            while i < n, (0x30...0x39).contains(bytes[i]) {
                value = value * 10 + Int64(bytes[i] - 0x30)
                if value > Int64(Int32.max) { throw fail("id out of range for \"\(key)\"") }
                i += 1
            }
            guard i > digitsStart, i >= n || ![0x2E, 0x65, 0x45].contains(bytes[i]) else {
                throw fail("value of \"\(key)\" is not an integer")
            }
            if negative { throw TokenizerError.invalidValue(path: path, key: key, reason: "negative id -\(value)") }
            result[ByteString(keyBytes)] = Int32(value)
            skipSpace()
            guard i < n else { throw fail("unterminated object") }
            if bytes[i] == 0x2C {
                i += 1
                continue
            }
            guard bytes[i] == 0x7D else { throw fail("expected ',' or '}'") }
            i += 1
            break
        }
    }
    skipSpace()
    guard i == n else { throw fail("trailing data") }
    return result
}

/// The merges of merges.txt as (left, right, line number) in rank order: an optional leading
/// `#version` line and blank lines are skipped; every other line must be two symbols separated by one
/// space.
func parseMerges(_ bytes: [UInt8], path: String) throws -> [(left: [UInt8], right: [UInt8], line: Int)] {
    var merges: [([UInt8], [UInt8], Int)] = []
    merges.reserveCapacity(bytes.count / 10)
    var lineStart = 0
    var lineNumber = 0
    let n = bytes.count
    while lineStart < n {
        var lineEnd = lineStart
        while lineEnd < n && bytes[lineEnd] != 0x0A { lineEnd += 1 }
        lineNumber += 1
        var end = lineEnd
        if end > lineStart && bytes[end - 1] == 0x0D { end -= 1 }
        defer { lineStart = lineEnd + 1 }
        if end == lineStart { continue }
        if lineNumber == 1 && bytes[lineStart..<end].starts(with: Array("#version".utf8)) { continue }
        var space = -1
        var spaces = 0
        for k in lineStart..<end where bytes[k] == 0x20 {
            spaces += 1
            space = k
        }
        guard spaces == 1, space > lineStart, space < end - 1 else {
            let text = String(decoding: bytes[lineStart..<end], as: UTF8.self)
            throw TokenizerError.invalidMerge(path: path, line: lineNumber,
                                              reason: "expected two symbols separated by one space, got \"\(text)\"")
        }
        merges.append((Array(bytes[lineStart..<space]), Array(bytes[(space + 1)..<end]), lineNumber))
    }
    return merges
}
