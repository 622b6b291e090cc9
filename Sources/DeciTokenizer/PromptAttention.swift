// A1111's attention grammar (stable-diffusion-webui `modules/prompt_parser.py:
// parse_prompt_attention`, 1.6-1.10): `(x)` x1.1, `[x]` /1.1, `(x:w)`, escapes, BREAK. The regex
// tokenizer is reproduced by hand, alternative by alternative, with Python's Unicode classes, on
// code points as Python indexes strings.

/// One run of prompt text and its attention weight; `BREAK` markers have the text "BREAK" and
/// weight -1, as A1111 writes them.
public struct PromptPiece: Sendable, Equatable, CustomStringConvertible {
    public var text: String
    /// A Python float in A1111 (a double here, multiplied in the same order, so the values are
    /// bit for bit A1111's).
    public var weight: Double

    public init(_ text: String, _ weight: Double) {
        self.text = text
        self.weight = weight
    }

    /// The marker `BREAK` leaves between two chunks (a BREAK inside brackets has its weight
    /// multiplied and is plain text, as in A1111).
    public var isBreak: Bool { text == "BREAK" && weight == -1 }

    public var description: String { "[\(text.debugDescription), \(weight)]" }
}

/// A prompt A1111 refuses: a bracket weight that is not a number, e.g. `(a:1.2.3)`.
public struct PromptSyntaxError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum PromptAttention {
    static let roundMultiplier = 1.1
    static let squareMultiplier = 1 / 1.1

    /// The weighted pieces of `text`, as A1111 parses them: adjacent pieces of equal weight merged,
    /// unclosed brackets applied to the end, stray closers kept as text, `[["", 1.0]]` for nothing.
    /// Throws where a `(…:number)` weight is not a number (A1111 fails the whole request there).
    public static func parse(_ text: String) throws(PromptSyntaxError) -> [PromptPiece] {
        let s = Array(text.unicodeScalars)
        var res: [PromptPiece] = []
        var round: [Int] = [], square: [Int] = []
        func multiply(from start: Int, by m: Double) {
            for p in start..<res.count { res[p].weight *= m }
        }
        var i = 0
        while i < s.count {
            let (token, end) = nextToken(s, at: i)
            defer { i = end }
            switch token {
            case .escaped(let literal):
                res.append(PromptPiece(literal, 1.0))
            case .open(let isRound):
                if isRound { round.append(res.count) } else { square.append(res.count) }
            case .weight(let number) where !round.isEmpty:
                guard let w = pythonFloat(number) else {
                    throw PromptSyntaxError("attention weight \"\(number)\" in \"\(String(String.UnicodeScalarView(s[i..<end])))\" is not a number")
                }
                multiply(from: round.removeLast(), by: w)
            case .close(isRound: true) where !round.isEmpty:
                multiply(from: round.removeLast(), by: roundMultiplier)
            case .close(isRound: false) where !square.isEmpty:
                multiply(from: square.removeLast(), by: squareMultiplier)
            default:
                for (k, part) in splitOnBreak(s[i..<end]).enumerated() {
                    if k > 0 { res.append(PromptPiece("BREAK", -1)) }
                    res.append(PromptPiece(part, 1.0))
                }
            }
        }
        for p in round { multiply(from: p, by: roundMultiplier) }
        for p in square { multiply(from: p, by: squareMultiplier) }
        if res.isEmpty { res = [PromptPiece("", 1.0)] }
        var k = 0
        while k + 1 < res.count {
            if res[k].weight == res[k + 1].weight {
                res[k].text += res[k + 1].text
                res.remove(at: k + 1)
            } else {
                k += 1
            }
        }
        return res
    }

    enum Token {
        /// `\(` `\)` `\[` `\]` `\\` and a lone `\` (which gives "").
        case escaped(String)
        case open(isRound: Bool)
        /// `:number)` (number = `[+-]?[.\d]+`, spaces allowed around it).
        case weight(String)
        case close(isRound: Bool)
        /// A run of text, or a lone `:`.
        case text
    }

    /// The regex's alternatives in A1111's order, at position `i`; returns the token and its end.
    static func nextToken(_ s: [Unicode.Scalar], at i: Int) -> (Token, Int) {
        let c = s[i]
        if c == "\\" {
            if i + 1 < s.count, "()[]\\".unicodeScalars.contains(s[i + 1]) { return (.escaped(String(s[i + 1])), i + 2) }
            return (.escaped(""), i + 1)
        }
        switch c {
        case "(": return (.open(isRound: true), i + 1)
        case "[": return (.open(isRound: false), i + 1)
        case ")": return (.close(isRound: true), i + 1)
        case "]": return (.close(isRound: false), i + 1)
        case ":":
            if let (number, end) = weightToken(s, at: i) { return (.weight(number), end) }
            return (.text, i + 1)
        default:
            var j = i + 1
            while j < s.count, !"\\()[]:".unicodeScalars.contains(s[j]) { j += 1 }
            return (.text, j)
        }
    }

    /// `:\s*([+-]?[.\d]+)\s*\)` at `i` (every quantifier greedy; backtracking cannot find another
    /// match, since each next character class is disjoint from the one before).
    static func weightToken(_ s: [Unicode.Scalar], at i: Int) -> (String, Int)? {
        var j = i + 1
        while j < s.count, UnicodeClass.isPythonSpace(s[j]) { j += 1 }
        let start = j
        if j < s.count, s[j] == "+" || s[j] == "-" { j += 1 }
        let digitsStart = j
        while j < s.count, s[j] == "." || isDecimalDigit(s[j]) { j += 1 }
        guard j > digitsStart else { return nil }
        let number = String(String.UnicodeScalarView(s[start..<j]))
        while j < s.count, UnicodeClass.isPythonSpace(s[j]) { j += 1 }
        guard j < s.count, s[j] == ")" else { return nil }
        return (number, j + 1)
    }

    /// `re.split(r"\s*\bBREAK\b\s*", part)`: BREAK in capitals as a whole word, with the
    /// whitespace around it.
    static func splitOnBreak(_ part: ArraySlice<Unicode.Scalar>) -> [String] {
        let s = Array(part)
        let word = Array("BREAK".unicodeScalars)
        func isWord(_ k: Int) -> Bool { k >= 0 && k < s.count && isPythonWordCharacter(s[k]) }
        var parts: [String] = []
        var pieceStart = 0, i = 0
        while i < s.count {
            var k = i
            while k < s.count, UnicodeClass.isPythonSpace(s[k]) { k += 1 }
            let matches = k + word.count <= s.count && Array(s[k..<(k + word.count)]) == word
                && !isWord(k - 1) && !isWord(k + word.count)
            guard matches else {
                i += 1
                continue
            }
            var end = k + word.count
            while end < s.count, UnicodeClass.isPythonSpace(s[end]) { end += 1 }
            parts.append(String(String.UnicodeScalarView(s[pieceStart..<i])))
            pieceStart = end
            i = end
        }
        parts.append(String(String.UnicodeScalarView(s[pieceStart...])))
        return parts
    }

    /// Python's `\d` for str patterns: Unicode decimal digits (category Nd).
    static func isDecimalDigit(_ c: Unicode.Scalar) -> Bool {
        c.value < 0x80 ? (c.value >= 0x30 && c.value <= 0x39) : c.properties.numericType == .decimal
    }

    /// Python's `\w` for str patterns: `str.isalnum()` or `_`.
    static func isPythonWordCharacter(_ c: Unicode.Scalar) -> Bool {
        c == "_" || UnicodeClass.isLetter(c) || c.properties.numericType != nil
    }

    /// Python's `float()` of `[+-]?[.\d]+`: at most one point and at least one digit; any Unicode
    /// decimal digit counts as its value. nil where Python raises.
    static func pythonFloat(_ text: String) -> Double? {
        var ascii = ""
        var points = 0, digits = 0
        for c in text.unicodeScalars {
            if c == "+" || c == "-" {
                ascii.unicodeScalars.append(c)
            } else if c == "." {
                points += 1
                ascii.append(".")
            } else if let v = c.properties.numericValue, isDecimalDigit(c) {
                digits += 1
                ascii += String(Int(v))
            } else {
                return nil
            }
        }
        guard points <= 1, digits >= 1 else { return nil }
        return Double(ascii)
    }
}
