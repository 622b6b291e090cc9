import Foundation
import Testing
import TestSupport
@testable import DeciTokenizer

/// Swift's Unicode tables against Python `regex` and Oniguruma (tokenizers) on 9287 code points
/// assigned since Unicode 3.2 in the scripts and symbol blocks prompts use.
@Suite struct UnicodeClassificationTests {
    struct Classes: Decodable {
        var python_regex: [[Int]]
        var oniguruma: [[Int]]
        var lowercase: [[StringOrInt]]
    }

    enum StringOrInt: Decodable {
        case int(Int), string(String)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { self = .int(i) } else { self = .string(try c.decode(String.self)) }
        }
        var int: Int? { if case .int(let i) = self { return i } else { return nil } }
        var string: String? { if case .string(let s) = self { return s } else { return nil } }
    }

    static func load() throws -> (python: [UInt32: Character], onig: [UInt32: Character], lower: [(UInt32, String, String)]) {
        // Rows are [first, count, "L"|"N"|"S"|"O"]; decode the class letter separately.
        let data = try Data(contentsOf: FixturePaths.url("tokenizer/unicode_classes.json"))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        func expand(_ key: String) -> [UInt32: Character] {
            var out: [UInt32: Character] = [:]
            for row in object[key] as? [[Any]] ?? [] {
                guard row.count == 3, let first = (row[0] as? NSNumber)?.intValue, let count = (row[1] as? NSNumber)?.intValue,
                      let cls = (row[2] as? String)?.first else { continue }
                for cp in first..<(first + count) { out[UInt32(cp)] = cls }
            }
            return out
        }
        var lower: [(UInt32, String, String)] = []
        for row in object["lowercase"] as? [[Any]] ?? [] {
            if let cp = (row[0] as? NSNumber)?.intValue, let py = row[1] as? String, let rs = row[2] as? String {
                lower.append((UInt32(cp), py, rs))
            }
        }
        return (expand("python_regex"), expand("oniguruma"), lower)
    }

    static func swiftClass(_ s: Unicode.Scalar) -> Character {
        if UnicodeClass.isLetter(s) { return "L" }
        if UnicodeClass.isNumber(s) { return "N" }
        if UnicodeClass.isWhiteSpace(s) { return "S" }
        return "O"
    }

    @Test func lettersNumbersAndSpacesAgree() throws {
        let (python, onig, _) = try Self.load()
        #expect(python.count > 9000 && onig.count == python.count)
        var mismatches: [String] = []
        for (cp, want) in python.sorted(by: { $0.key < $1.key }) {
            guard let s = Unicode.Scalar(cp) else { continue }
            let got = Self.swiftClass(s)
            if got != want || onig[cp] != want {
                mismatches.append("U+\(String(cp, radix: 16)) swift \(got) python \(want) onig \(onig[cp].map(String.init) ?? "?")")
            }
        }
        #expect(mismatches.isEmpty, Comment(rawValue: "\(mismatches.count) differ: " + mismatches.prefix(20).joined(separator: ", ")))
    }

    @Test func lowercaseMappingsAgree() throws {
        let (python, _, lower) = try Self.load()
        #expect(lower.count > 500)
        let changed = Set(lower.map(\.0))
        var mismatches: [String] = []
        for (cp, py, rs) in lower {
            guard let s = Unicode.Scalar(cp) else { continue }
            var swiftOut: [Unicode.Scalar] = []
            appendLowercased(s, to: &swiftOut)
            var pyOut: [Unicode.Scalar] = []
            pythonLower([s][...], into: &pyOut)
            let rust = String(String.UnicodeScalarView(swiftOut)), pythonStyle = String(String.UnicodeScalarView(pyOut))
            if rust != rs || pythonStyle != py { mismatches.append("U+\(String(cp, radix: 16))") }
        }
        // Code points the oracles leave unchanged must stay unchanged here too.
        for cp in python.keys where !changed.contains(cp) {
            guard let s = Unicode.Scalar(cp) else { continue }
            var out: [Unicode.Scalar] = []
            appendLowercased(s, to: &out)
            if out != [s] { mismatches.append("U+\(String(cp, radix: 16)) changed") }
        }
        #expect(mismatches.isEmpty, Comment(rawValue: "\(mismatches.count) differ: " + mismatches.prefix(20).joined(separator: ", ")))
    }

    @Test func greekFinalSigmaFollowsPython() {
        func lower(_ text: String) -> String {
            var out: [Unicode.Scalar] = []
            pythonLower(Array(text.unicodeScalars)[...], into: &out)
            return String(String.UnicodeScalarView(out))
        }
        #expect(lower("ΟΔΟΣ") == "οδος")
        #expect(lower("Σ") == "σ")
        #expect(lower("ΑΣ1") == "ας1")
        #expect(lower("ΑΣΑ") == "ασα")
        #expect(lower("Α'Σ") == "α'ς")  // apostrophe is case-ignorable
    }
}

/// The heap-based merge loop against a direct transcription of the reference algorithm (merge every
/// occurrence of the lowest-ranked pair, repeat), on the real merges.
@Suite struct BytePairEncodingTests {
    /// Reference: symbols as strings, ranks by pair, whole-word passes.
    static func referenceBPE(_ word: [UInt8], ranks: [String: [String: Int]], vocab: (String) -> Int32?) -> [Int32] {
        var symbols = word.map { String(ByteAlphabet.characters[Int($0)]) }
        symbols[symbols.count - 1] += "</w>"
        while symbols.count > 1 {
            var best: (rank: Int, first: String, second: String)?
            for i in 0..<(symbols.count - 1) {
                if let r = ranks[symbols[i]]?[symbols[i + 1]], r < (best?.rank ?? .max) { best = (r, symbols[i], symbols[i + 1]) }
            }
            guard let (_, first, second) = best else { break }
            var merged: [String] = []
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count && symbols[i] == first && symbols[i + 1] == second {
                    merged.append(first + second)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        return symbols.map { vocab($0) ?? -1 }
    }

    @Test func heapMergeEqualsReferenceLoop() throws {
        let tokenizer = try SharedTokenizers.get(.transformers)
        let mergesText = try String(contentsOf: TokenizerFolders.clip.appendingPathComponent("merges.txt"), encoding: .utf8)
        var ranks: [String: [String: Int]] = [:]
        for (rank, line) in mergesText.split(separator: "\n").dropFirst().enumerated() {
            let parts = line.split(separator: " ")
            ranks[String(parts[0]), default: [:]][String(parts[1])] = rank
        }
        var rng = SplitMix(seed: 7)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzaeiouaeioueeetth!.,'-0123456789".utf8)
        var words: [[UInt8]] = ["aaaaaaaaaaaaaaaaaaaaaaaaa", "abababababababab", "lllllll", "mississippi", "!!!!!!!!!!",
                                "photorealistic", "🐱🐱🐱", "日本語のテキスト", "ééééé"].map { Array($0.utf8) }
        for _ in 0..<1500 {
            let length = 1 + Int(rng.next() % 24)
            if rng.next() % 5 == 0 {
                words.append((0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            } else {
                words.append((0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            }
        }
        var mismatches = 0
        var example = ""
        for word in words {
            var got: [Int32] = []
            tokenizer.bpe.encodeWord(word, into: &got)
            let want = Self.referenceBPE(word, ranks: ranks, vocab: tokenizer.tokenID)
            if got != want {
                mismatches += 1
                if example.isEmpty { example = "\(word): got \(got) want \(want)" }
            }
        }
        #expect(mismatches == 0, Comment(rawValue: "\(mismatches) of \(words.count) words differ, e.g. \(example)"))
    }

    /// A 20,000-byte word must not take quadratic time (the reference loop would need minutes).
    @Test func longWordIsFast() throws {
        let tokenizer = try SharedTokenizers.get(.transformers)
        let word = [UInt8](repeating: UInt8(ascii: "a"), count: 20_000) + Array("bcdefg".utf8)
        let clock = ContinuousClock()
        var out: [Int32] = []
        let elapsed = clock.measure { tokenizer.bpe.encodeWord(word, into: &out) }
        #expect(tokenizer.decode(out).utf8.count == word.count)
        print("BPE of a 20006-byte word: \(out.count) tokens in \(elapsed)")
    }

    @Test func byteAlphabetIsABijection() {
        let chars = ByteAlphabet.characters
        #expect(Set(chars).count == 256)
        #expect(chars[Int(UInt8(ascii: "a"))] == "a" && chars[0x20] == "\u{120}" && chars[0] == "\u{100}")
        for (b, c) in chars.enumerated() { #expect(ByteAlphabet.bytes[c.value] == UInt8(b)) }
    }
}

/// Small deterministic generator for test inputs.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
