import Foundation
import Testing
import TestSupport
@testable import DeciTokenizer

/// Every fixture prompt must give exactly transformers' ids, length, padding and truncation report.
@Suite struct CLIPTokenizerParityTests {
    static let modes = CLIPTokenizer.Compatibility.allCases

    /// Checks one fixture file in one mode; returns the failure descriptions (empty when all match).
    func mismatches(_ fixture: PromptFixture, _ tokenizer: CLIPTokenizer, padID: Int32) -> [String] {
        var failures: [String] = []
        for c in fixture.cases {
            let want = c.expected(tokenizer.compatibility)
            let got = tokenizer.encode(c.text)
            let wantPadded = want.ids + Array(repeating: padID, count: fixture.max_length - want.ids.count)
            var problems: [String] = []
            if got.ids != wantPadded {
                let firstDiff = zip(got.ids, wantPadded).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1
                problems.append("ids differ from index \(firstDiff): got \(got.ids.prefix(got.count)), want \(want.ids)")
            }
            if got.count != want.ids.count { problems.append("count \(got.count) want \(want.ids.count)") }
            if got.attentionMask != wantPadded.indices.map({ $0 < want.ids.count ? 1 : 0 }) { problems.append("attention mask") }
            if let untruncated = want.untruncated {
                if tokenizer.tokenize(c.text) != untruncated { problems.append("untruncated ids differ") }
                if got.untruncatedCount != untruncated.count { problems.append("untruncatedCount \(got.untruncatedCount)") }
                if got.droppedText != want.removed {
                    problems.append("dropped text \(String(describing: got.droppedText)) want \(String(describing: want.removed))")
                }
            } else if got.isTruncated || got.droppedText != nil || got.untruncatedCount != want.ids.count {
                problems.append("reported truncation for a prompt that fits")
            }
            if !problems.isEmpty { failures.append("\(describe(c.text)): " + problems.joined(separator: "; ")) }
        }
        return failures
    }

    @Test(arguments: modes)
    func promptSetMatchesTransformers(_ mode: CLIPTokenizer.Compatibility) throws {
        let fixture = try PromptFixture.load("clip_prompts.json")
        #expect(fixture.cases.count >= 500)
        let tokenizer = try SharedTokenizers.get(mode)
        let pad = mode == .transformers ? fixture.pad_id : fixture.legacy_pad_id
        #expect(tokenizer.padTokenID == pad)
        let failures = mismatches(fixture, tokenizer, padID: pad)
        #expect(failures.isEmpty, Comment(rawValue: "\(failures.count) of \(fixture.cases.count) prompts differ (\(mode)):\n"
                + failures.prefix(15).joined(separator: "\n")))
    }

    /// The fixture set really exercises truncation and the modes' differences.
    @Test func fixtureCoversTruncationAndModeDifferences() throws {
        let fixture = try PromptFixture.load("clip_prompts.json")
        let truncated = fixture.cases.filter { $0.answer.untruncated != nil }.count
        let differing = fixture.cases.filter { $0.legacy != nil }.count
        #expect(truncated >= 20, "only \(truncated) truncated prompts")
        #expect(differing >= 20, "only \(differing) prompts where the legacy tokenizer differs")
        #expect(fixture.cases.contains { $0.text.isEmpty })
    }

    /// SD 2.x: special_tokens_map.json names "!" as pad (id 0), which also makes every "!" typed in a
    /// prompt the pad token.
    @Test(arguments: modes)
    func sd2PadTokenConfig(_ mode: CLIPTokenizer.Compatibility) throws {
        let fixture = try PromptFixture.load("sd2_pad_prompts.json")
        let tokenizer = try CLIPTokenizer(files: TokenizerFolders.variant("sd2-pad"), compatibility: mode)
        #expect(tokenizer.padToken == "!")
        #expect(tokenizer.padTokenID == 0)
        #expect(fixture.pad_id == 0)
        let failures = mismatches(fixture, tokenizer, padID: 0)
        #expect(failures.isEmpty, Comment(rawValue: "\(failures.count) differ:\n" + failures.prefix(10).joined(separator: "\n")))
        #expect(tokenizer.encode("hello!").ids.prefix(4) == [49406, 3306, 0, 49407])
    }

    /// transformers >= 4.34 layout: added_tokens_decoder present, so special_tokens_map.json (pad "!") is
    /// ignored; tokens are plain strings; clean_up_tokenization_spaces is set.
    @Test(arguments: modes)
    func modernFormatConfig(_ mode: CLIPTokenizer.Compatibility) throws {
        let fixture = try PromptFixture.load("modern_format_prompts.json")
        let tokenizer = try CLIPTokenizer(files: TokenizerFolders.variant("modern-format"), compatibility: mode)
        #expect(tokenizer.padToken == "<|endoftext|>")
        #expect(tokenizer.padTokenID == 49407)
        #expect(tokenizer.cleanUpTokenizationSpaces)
        let failures = mismatches(fixture, tokenizer, padID: 49407)
        #expect(failures.isEmpty, Comment(rawValue: "\(failures.count) differ:\n" + failures.prefix(10).joined(separator: "\n")))
    }

    @Test func knownIDs() throws {
        let t = try SharedTokenizers.get(.transformers)
        let p = t.encode("a photo of a cat")
        #expect(Array(p.ids.prefix(7)) == [49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(p.ids.count == 77 && p.count == 7 && p.ids[7...].allSatisfy { $0 == 49407 })
        #expect(!p.isTruncated && p.truncationWarning == nil)
        #expect(t.maxLength == 77 && t.bosTokenID == 49406 && t.eosTokenID == 49407 && t.vocabularySize == 49408)
        #expect(t.encode("").ids.prefix(3) == [49406, 49407, 49407])
    }

    @Test func truncationWarningMatchesDiffusersWording() throws {
        let t = try SharedTokenizers.get(.transformers)
        let p = t.encode(Array(repeating: "cat", count: 80).joined(separator: " "))
        #expect(p.count == 77 && p.untruncatedCount == 82 && p.droppedIDs.count == 5)
        #expect(p.droppedText == "cat cat cat cat cat")
        #expect(p.ids.last == 49407 && p.ids[75] == 2368)
        #expect(p.truncationWarning == "The following part of your input was truncated because CLIP can only handle "
                + "sequences up to 77 tokens: cat cat cat cat cat")
        // Exactly 77 tokens fits: no warning, as in diffusers.
        let exact = t.encode(Array(repeating: "cat", count: 75).joined(separator: " "))
        #expect(exact.count == 77 && !exact.isTruncated)
    }

    @Test func decodeRoundTripsPlainText() throws {
        let t = try SharedTokenizers.get(.transformers)
        let text = "a watercolor painting of a lighthouse, 4k!"
        #expect(t.decode(t.contentTokenIDs(text)) == "a watercolor painting of a lighthouse , 4 k !")
        #expect(t.decode([49406, 320, 49407]) == "<|startoftext|>a <|endoftext|>")
        // A multi-byte character cut between tokens decodes with U+FFFD, as Python's errors="replace".
        let cat = t.contentTokenIDs("🐱")
        #expect(cat.count >= 1)
        #expect(t.decode(cat) == "🐱")
    }

    /// The cache must not change results: encode twice, and with a fresh tokenizer.
    @Test func cachedAndUncachedAgree() throws {
        let t = try SharedTokenizers.get(.transformers)
        let text = "supercalifragilisticexpialidocious antidisestablishmentarianism 🐱🐱 日本語"
        let first = t.contentTokenIDs(text)
        #expect(t.contentTokenIDs(text) == first)
        let fresh = try CLIPTokenizer(directory: TokenizerFolders.clip)
        #expect(fresh.contentTokenIDs(text) == first)
    }
}
