import Foundation

// Text clean-up and word splitting before BPE. Two flavours, chosen by `CLIPTokenizer.Compatibility`:
// - transformers 5 CLIPTokenizer / CLIPTokenizerFast (tokenizers library): NFC, every White_Space run -> " ",
//   per-character lower-casing, then the CLIP split pattern followed by the ByteLevel (GPT-2) split.
// - transformers 4 slow CLIPTokenizer without ftfy: BERT's BasicTokenizer clean-up (drops control and
//   unassigned characters, spaces out CJK ideographs, NFC, splits on whitespace, Python str.lower() with
//   its final-sigma rule), then the CLIP split pattern matched case-insensitively.

enum UnicodeClass {
    /// `\p{L}`.
    @inline(__always)
    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x80 { return (s.value | 0x20) >= 0x61 && (s.value | 0x20) <= 0x7A }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// `\p{N}`.
    @inline(__always)
    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x80 { return s.value >= 0x30 && s.value <= 0x39 }
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// `\s` in Oniguruma and in Python's `regex` module: the Unicode White_Space property.
    @inline(__always)
    static func isWhiteSpace(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x80 { return s.value == 0x20 || (s.value >= 0x09 && s.value <= 0x0D) }
        return s.properties.isWhitespace
    }

    /// Python's str.isspace(): category Zs or bidirectional class WS, B or S. Unlike White_Space this
    /// includes U+001C...U+001F.
    static func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// The ideograph ranges BERT's BasicTokenizer surrounds with spaces.
    static func isCJKIdeograph(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}

/// Canonical composition. Text below U+0300 has no combining marks and no singleton decompositions, so
/// it is already NFC; only other text goes through Foundation.
func nfc(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
    if scalars.allSatisfy({ $0.value < 0x300 }) { return scalars }
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars)
    return Array(String(view).precomposedStringWithCanonicalMapping.unicodeScalars)
}

@inline(__always)
func appendLowercased(_ s: Unicode.Scalar, to out: inout [Unicode.Scalar]) {
    if s.value < 0x80 {
        out.append((0x41...0x5A).contains(s.value) ? Unicode.Scalar(s.value + 0x20)! : s)
    } else {
        out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
    }
}

/// The tokenizers-backend normaliser: NFC, White_Space runs to one space, then per-character full
/// lower-case mapping (no final-sigma context, as Rust's char::to_lowercase).
func normalizeTokenizersBackend(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
    let composed = nfc(Array(text))
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(composed.count)
    var inSpace = false
    for s in composed {
        if UnicodeClass.isWhiteSpace(s) {
            if !inSpace { out.append(" ") }
            inSpace = true
            continue
        }
        inSpace = false
        appendLowercased(s, to: &out)
    }
    return out
}

/// BERT BasicTokenizer (strip_accents=False, no punctuation split) as transformers 4's CLIPTokenizer
/// runs it when ftfy is absent. Returns the words joined by single spaces.
func normalizeLegacy(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
    var cleaned: [Unicode.Scalar] = []
    cleaned.reserveCapacity(text.count)
    for s in text {
        let v = s.value
        if v == 0x09 || v == 0x0A || v == 0x0D || v == 0x20 {
            cleaned.append(" ")
            continue
        }
        if v == 0 || v == 0xFFFD { continue }
        let category = s.properties.generalCategory
        switch category {
        case .control, .format, .surrogate, .privateUse, .unassigned:
            continue
        case .spaceSeparator:
            cleaned.append(" ")
        default:
            if UnicodeClass.isCJKIdeograph(v) {
                cleaned.append(" ")
                cleaned.append(s)
                cleaned.append(" ")
            } else {
                cleaned.append(s)
            }
        }
    }
    let composed = nfc(cleaned)
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(composed.count)
    var wordStart = -1
    for i in 0...composed.count {
        let atEnd = i == composed.count
        if atEnd || UnicodeClass.isPythonSpace(composed[i]) {
            if wordStart >= 0 {
                if !out.isEmpty { out.append(" ") }
                pythonLower(composed[wordStart..<i], into: &out)
                wordStart = -1
            }
        } else if wordStart < 0 {
            wordStart = i
        }
    }
    return out
}

/// Python's str.lower(): full lower-case mapping, and capital sigma becomes final sigma when it ends a
/// cased word (preceded by a cased letter and not followed by one, skipping case-ignorable characters).
func pythonLower(_ word: ArraySlice<Unicode.Scalar>, into out: inout [Unicode.Scalar]) {
    for i in word.indices {
        let s = word[i]
        if s.value == 0x3A3 {
            var j = i - 1
            while j >= word.startIndex && word[j].properties.isCaseIgnorable { j -= 1 }
            var final = j >= word.startIndex && word[j].properties.isCased
            if final {
                var k = i + 1
                while k < word.endIndex && word[k].properties.isCaseIgnorable { k += 1 }
                final = k == word.endIndex || !word[k].properties.isCased
            }
            out.append(final ? "\u{3C2}" : "\u{3C3}")
        } else {
            appendLowercased(s, to: &out)
        }
    }
}

/// One unit handed to BPE (or, for a literal special token in legacy mode, looked up whole).
enum Piece {
    case word(ArraySlice<Unicode.Scalar>)
    /// `<|startoftext|>` / `<|endoftext|>` typed as text and caught by the split pattern.
    case specialLiteral(ArraySlice<Unicode.Scalar>)
}

private let startLiteral = Array("<|startoftext|>".unicodeScalars)
private let endLiteral = Array("<|endoftext|>".unicodeScalars)

/// The CLIP split pattern
/// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
/// as an ordered-alternation scanner: at each position the first alternative that matches wins and
/// unmatched characters (whitespace) are dropped. `caseInsensitive` reproduces Python `regex`'s
/// IGNORECASE on already lower-cased text: the only extra equivalence left is U+017F (long s) ~ "s".
func splitCLIPPattern(_ text: [Unicode.Scalar], caseInsensitive: Bool, _ emit: (Piece) -> Void) {
    let n = text.count
    @inline(__always) func same(_ a: Unicode.Scalar, _ b: Unicode.Scalar) -> Bool {
        a == b || (caseInsensitive && b == "s" && a == "\u{17F}")
    }
    func matches(_ literal: [Unicode.Scalar], at i: Int) -> Bool {
        guard i + literal.count <= n else { return false }
        for k in 0..<literal.count where !same(text[i + k], literal[k]) { return false }
        return true
    }
    var i = 0
    while i < n {
        let s = text[i]
        if s == "<" {
            if matches(startLiteral, at: i) {
                emit(.specialLiteral(text[i..<(i + startLiteral.count)]))
                i += startLiteral.count
                continue
            }
            if matches(endLiteral, at: i) {
                emit(.specialLiteral(text[i..<(i + endLiteral.count)]))
                i += endLiteral.count
                continue
            }
        }
        if s == "'" && i + 1 < n {
            let a = text[i + 1]
            var length = 0
            if same(a, "s") || same(a, "t") || same(a, "m") || same(a, "d") {
                length = 2
            } else if i + 2 < n {
                let b = text[i + 2]
                if (same(a, "r") && same(b, "e")) || (same(a, "v") && same(b, "e")) || (same(a, "l") && same(b, "l")) {
                    length = 3
                }
            }
            if length > 0 {
                emit(.word(text[i..<(i + length)]))
                i += length
                continue
            }
        }
        if UnicodeClass.isLetter(s) {
            var j = i + 1
            while j < n && UnicodeClass.isLetter(text[j]) { j += 1 }
            emit(.word(text[i..<j]))
            i = j
        } else if UnicodeClass.isNumber(s) {
            emit(.word(text[i..<(i + 1)]))
            i += 1
        } else if UnicodeClass.isWhiteSpace(s) {
            i += 1
        } else {
            var j = i + 1
            while j < n {
                let t = text[j]
                if UnicodeClass.isWhiteSpace(t) || UnicodeClass.isLetter(t) || UnicodeClass.isNumber(t) { break }
                j += 1
            }
            emit(.word(text[i..<j]))
            i = j
        }
    }
}

/// Leftmost-longest matcher for added tokens (special tokens typed in the prompt).
struct AddedTokenMatcher: Sendable {
    struct Entry: Sendable {
        var scalars: [Unicode.Scalar]
        var id: Int32
        /// Ids emitted after `id` (a multi-vector textual-inversion token).
        var following: [Int32] = []
    }
    let entries: [Entry]
    private let firstScalars: Set<Unicode.Scalar>

    init(_ entries: [Entry]) {
        self.entries = entries.filter { !$0.scalars.isEmpty }
        self.firstScalars = Set(self.entries.map { $0.scalars[0] })
    }

    var isEmpty: Bool { entries.isEmpty }

    /// Splits `text` into runs of plain text and matched token ids, in order.
    func split(_ text: ArraySlice<Unicode.Scalar>, plain: (ArraySlice<Unicode.Scalar>) -> Void, token: (Int32) -> Void) {
        if entries.isEmpty {
            plain(text)
            return
        }
        var runStart = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            guard firstScalars.contains(text[i]) else {
                i += 1
                continue
            }
            var best: Entry?
            for e in entries where e.scalars.count > (best?.scalars.count ?? 0) && i + e.scalars.count <= text.endIndex {
                if text[i..<(i + e.scalars.count)].elementsEqual(e.scalars) { best = e }
            }
            if let match = best {
                if runStart < i { plain(text[runStart..<i]) }
                token(match.id)
                for id in match.following { token(id) }
                i += match.scalars.count
                runStart = i
            } else {
                i += 1
            }
        }
        if runStart < text.endIndex { plain(text[runStart..<text.endIndex]) }
    }
}
