// A1111's attention grammar and long-prompt chunking against the Python reference
// (tools/prompt_weighting_reference.py, Fixtures/prompts/parser.json), piece by piece, token by
// token and weight by weight, plus the worked examples of the reference notes.
import Foundation
import Testing
import TestSupport
@testable import DeciTokenizer

/// One prompt of parser.json.
struct ParserCase: Decodable, CustomStringConvertible {
    struct Chunk: Decodable {
        var ids: [Int32]
        var multipliers: [Double]
    }
    var prompt: String
    var error: Bool?
    /// `[[text, weight], ...]` as JSON arrays of a string and a number.
    var parsed: [[ParsedValue]]?
    var chunks: [Chunk]?

    enum ParsedValue: Decodable {
        case text(String), weight(Double)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .text(s) } else { self = .weight(try c.decode(Double.self)) }
        }
    }

    var pieces: [PromptPiece]? {
        parsed?.compactMap { pair in
            guard pair.count == 2, case .text(let t) = pair[0], case .weight(let w) = pair[1] else { return nil }
            return PromptPiece(t, w)
        }
    }

    var description: String { String(prompt.prefix(60)).debugDescription }

    static let all: [ParserCase] = {
        guard let data = try? Data(contentsOf: FixturePaths.url("prompts/parser.json")) else { return [] }
        return (try? JSONDecoder().decode([ParserCase].self, from: data)) ?? []
    }()
}

@Suite struct PromptAttentionTests {
    @Test func fixtureHasEnoughPrompts() {
        #expect(ParserCase.all.count >= 200, "Fixtures/prompts/parser.json: \(ParserCase.all.count) prompts")
    }

    @Test(arguments: ParserCase.all) func parsesAsTheReference(_ c: ParserCase) throws {
        if c.error == true {
            #expect(throws: PromptSyntaxError.self) { try PromptAttention.parse(c.prompt) }
            return
        }
        let want = try #require(c.pieces)
        let got = try PromptAttention.parse(c.prompt)
        // Weights exactly: the same doubles multiplied in the same order as Python.
        #expect(got == want, "got \(got), want \(want)")
    }

    @Test(arguments: ParserCase.all) func chunksAsTheReference(_ c: ParserCase) throws {
        guard let want = c.chunks else { return }
        let tokenizer = try SharedTokenizers.get(.transformers)
        let got = tokenizer.chunks(try PromptAttention.parse(c.prompt))
        try #require(got.count == want.count, "\(got.count) chunks, want \(want.count)")
        for (i, (g, w)) in zip(got, want).enumerated() {
            #expect(g.ids == w.ids, "chunk \(i) ids")
            #expect(g.multipliers == w.multipliers.map { Float($0) }, "chunk \(i) multipliers")
        }
    }

    @Test func workedExamples() throws {
        let doctest = try PromptAttention.parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")
        #expect(doctest == [PromptPiece("a ", 1.0), PromptPiece("house", 1.5730000000000004), PromptPiece(" ", 1.1),
                            PromptPiece("on", 1.0), PromptPiece(" a ", 1.1), PromptPiece("hill", 0.55),
                            PromptPiece(", sun, ", 1.1), PromptPiece("sky", 1.4641000000000006), PromptPiece(".", 1.1)])
        #expect(try PromptAttention.parse(#"\(literal\]"#) == [PromptPiece("(literal]", 1)])
        #expect(try PromptAttention.parse("(unnecessary)(parens)") == [PromptPiece("unnecessaryparens", 1.1)])
        #expect(try PromptAttention.parse(#"a\b"#) == [PromptPiece("ab", 1)])
        #expect(try PromptAttention.parse("(x BREAK y)") == [PromptPiece("x", 1.1), PromptPiece("BREAK", -1.1), PromptPiece("y", 1.1)])
        let breaks = try PromptAttention.parse("a BREAK b")
        #expect(breaks.map(\.isBreak) == [false, true, false])
        #expect(try PromptAttention.parse("") == [PromptPiece("", 1)])
        #expect(throws: PromptSyntaxError.self) { try PromptAttention.parse("(a:1.2.3)") }
    }

    @Test func chunkBoundaries() throws {
        let t = try SharedTokenizers.get(.transformers)
        func count(_ prompt: String) throws -> Int { t.chunks(try PromptAttention.parse(prompt)).count }
        #expect(try count("") == 1 && count(String(repeating: "cat ", count: 75)) == 1)
        #expect(try count(String(repeating: "cat ", count: 76)) == 2)
        #expect(try count("BREAK cat") == 2 && count("a BREAK BREAK b") == 3)
        let empty = t.emptyChunk
        #expect(empty.ids == [t.bosTokenID] + [Int32](repeating: t.eosTokenID, count: 76) && empty.multipliers.allSatisfy { $0 == 1 })
        // The comma 5 tokens before the end moves the 4 words after it; 21 before does not.
        let comma = try #require(t.tokenID(",</w>"))
        let backtracked = t.chunks(try PromptAttention.parse(String(repeating: "cat ", count: 70) + ", " + String(repeating: "dog ", count: 9)))
        #expect(backtracked[0].ids[71] == comma && backtracked[0].ids[72] == t.eosTokenID)
        let kept = t.chunks(try PromptAttention.parse(String(repeating: "cat ", count: 54) + ", " + String(repeating: "dog ", count: 25)))
        #expect(kept[0].ids[55] == comma && kept[0].ids[75] != t.eosTokenID)
    }
}
