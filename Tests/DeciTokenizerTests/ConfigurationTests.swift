import Foundation
import Testing
import TestSupport
@testable import DeciTokenizer

/// Loading rules and error messages, on a tiny synthetic vocabulary.
@Suite struct ConfigurationTests {
    /// 512 byte symbols, the merges "h e", "he y</w>" , "l o</w>", and the two CLIP special tokens.
    static func tinyVocabulary() -> (vocab: String, merges: String) {
        var tokens = ByteAlphabet.characters.map { String($0) }
        tokens += ByteAlphabet.characters.map { String($0) + "</w>" }
        tokens += ["he", "hey</w>", "lo</w>", "<|startoftext|>", "<|endoftext|>"]
        let entries = tokens.enumerated().map { "\(jsonString($0.element)): \($0.offset)" }
        return ("{" + entries.joined(separator: ", ") + "}", "#version: 0.2\nh e\nhe y</w>\nl o</w>\n")
    }

    static func jsonString(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed])
        return String(decoding: data, as: UTF8.self).dropFirst().dropLast().description
    }

    static let tokenObject = #"{"content": "%@", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false}"#

    static func folder(config: String, map: String? = nil, vocab: String? = nil, merges: String? = nil) throws -> URL {
        let tiny = tinyVocabulary()
        var files = ["vocab.json": vocab ?? tiny.vocab, "merges.txt": merges ?? tiny.merges, "tokenizer_config.json": config]
        if let map { files["special_tokens_map.json"] = map }
        return try scratchFolder(files)
    }

    static func object(_ content: String) -> String { tokenObject.replacingOccurrences(of: "%@", with: content) }

    func expectError(_ expected: (TokenizerError) -> Bool, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected an error", sourceLocation: sourceLocation)
        } catch let error as TokenizerError {
            #expect(expected(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("not a TokenizerError: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func tinyTokenizerEncodesWithMerges() throws {
        let dir = try Self.folder(config: #"{"model_max_length": 8}"#)
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try CLIPTokenizer(directory: dir)
        // Defaults of CLIPTokenizer's constructor when no file names the tokens.
        #expect(t.bosToken == "<|startoftext|>" && t.eosToken == "<|endoftext|>" && t.padToken == "<|endoftext|>")
        let hey = t.tokenID("hey</w>"), lo = t.tokenID("lo</w>")
        #expect(hey != nil && lo != nil)
        let p = t.encode("HEY lo hey")
        #expect(Array(p.ids.prefix(5)) == [t.bosTokenID, hey!, lo!, hey!, t.eosTokenID])
        #expect(p.ids.count == 8 && p.count == 5)
        let long = t.encode("hey hey hey hey hey hey hey hey")
        #expect(long.count == 8 && long.isTruncated && long.droppedText == "hey hey")
    }

    @Test func specialTokensMapOverridesLegacyConfig() throws {
        let config = #"{"model_max_length": 77, "pad_token": "<|endoftext|>", "bos_token": \#(Self.object("<|startoftext|>"))}"#
        let dir = try Self.folder(config: config, map: #"{"pad_token": "!", "eos_token": \#(Self.object("<|endoftext|>"))}"#)
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try CLIPTokenizer(directory: dir)
        // The tiny vocabulary lists bytes in byte order, so "!" is id 33 here (0 in CLIP's layout).
        #expect(t.padToken == "!" && t.padTokenID == 33 && t.tokenID("!") == 33)
        #expect(t.encode("a!").ids.prefix(5) == [t.bosTokenID, t.tokenID("a</w>")!, 33, t.eosTokenID, 33])
    }

    @Test func addedTokensDecoderDisablesSpecialTokensMap() throws {
        let config = #"{"model_max_length": 77, "pad_token": "<|endoftext|>", "added_tokens_decoder": {"513": {"content": "<|endoftext|>", "special": true}}}"#
        let dir = try Self.folder(config: config, map: #"{"pad_token": "!"}"#)
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try CLIPTokenizer(directory: dir)
        #expect(t.padToken == "<|endoftext|>")
    }

    @Test func nullPadTokenFallsBackToNothingAndIsReported() throws {
        let dir = try Self.folder(config: #"{"model_max_length": 77, "pad_token": null}"#)
        defer { try? FileManager.default.removeItem(at: dir) }
        expectError({ if case .missingKey(_, "pad_token") = $0 { true } else { false } }) {
            _ = try CLIPTokenizer(directory: dir)
        }
    }

    @Test func errorsNameFileAndProblem() throws {
        let good = #"{"model_max_length": 77}"#
        // Missing file.
        let noMerges = try scratchFolder(["vocab.json": Self.tinyVocabulary().vocab, "tokenizer_config.json": good])
        defer { try? FileManager.default.removeItem(at: noMerges) }
        expectError({ if case .missingFile(let p) = $0 { p.hasSuffix("merges.txt") } else { false } }) {
            _ = try CLIPTokenizer(directory: noMerges)
        }
        // Broken JSON.
        let badJSON = try Self.folder(config: "{\"model_max_length\": 77,")
        defer { try? FileManager.default.removeItem(at: badJSON) }
        expectError({ if case .invalidJSON(let p, _) = $0 { p.hasSuffix("tokenizer_config.json") } else { false } }) {
            _ = try CLIPTokenizer(directory: badJSON)
        }
        // model_max_length absent / transformers' "very large" placeholder.
        let noLength = try Self.folder(config: "{}")
        defer { try? FileManager.default.removeItem(at: noLength) }
        expectError({ if case .missingKey(_, "model_max_length") = $0 { true } else { false } }) {
            _ = try CLIPTokenizer(directory: noLength)
        }
        let hugeLength = try Self.folder(config: #"{"model_max_length": 1000000000000000019884624838656}"#)
        defer { try? FileManager.default.removeItem(at: hugeLength) }
        expectError({ if case .invalidValue(_, "model_max_length", _) = $0 { true } else { false } }) {
            _ = try CLIPTokenizer(directory: hugeLength)
        }
        // Token object without content.
        let noContent = try Self.folder(config: #"{"model_max_length": 77, "bos_token": {"lstrip": false}}"#)
        defer { try? FileManager.default.removeItem(at: noContent) }
        expectError({ if case .invalidValue(let p, "bos_token", _) = $0 { p.hasSuffix("tokenizer_config.json") } else { false } }) {
            _ = try CLIPTokenizer(directory: noContent)
        }
        // Special token missing from the vocabulary, named with the file it came from.
        let unknownPad = try Self.folder(config: good, map: #"{"pad_token": "<pad>"}"#)
        defer { try? FileManager.default.removeItem(at: unknownPad) }
        expectError({
            if case .specialTokenNotInVocabulary("pad_token", "<pad>", let p) = $0 { p.hasSuffix("special_tokens_map.json") } else { false }
        }) { _ = try CLIPTokenizer(directory: unknownPad) }
        // Malformed merges line, and a merge of symbols the vocabulary lacks.
        let badMerge = try Self.folder(config: good, merges: "#version: 0.2\nh e\nthree parts here\n")
        defer { try? FileManager.default.removeItem(at: badMerge) }
        expectError({ if case .invalidMerge(let p, 3, _) = $0 { p.hasSuffix("merges.txt") } else { false } }) {
            _ = try CLIPTokenizer(directory: badMerge)
        }
        let unknownMerge = try Self.folder(config: good, merges: "#version: 0.2\nq z\n")
        defer { try? FileManager.default.removeItem(at: unknownMerge) }
        expectError({ if case .invalidMerge(_, 2, let reason) = $0 { reason.contains("qz") } else { false } }) {
            _ = try CLIPTokenizer(directory: unknownMerge)
        }
        // Vocabulary that is not token -> id.
        let badVocab = try Self.folder(config: good, vocab: #"{"a": "one"}"#)
        defer { try? FileManager.default.removeItem(at: badVocab) }
        expectError({ if case .invalidJSON(let p, _) = $0 { p.hasSuffix("vocab.json") } else { false } }) {
            _ = try CLIPTokenizer(directory: badVocab)
        }
    }

    @Test func errorDescriptionsMentionFile() {
        let e = TokenizerError.invalidValue(path: "/x/tokenizer_config.json", key: "model_max_length", reason: "bad")
        #expect(e.description == "/x/tokenizer_config.json: key \"model_max_length\": bad")
        #expect(TokenizerError.missingFile(path: "/x/vocab.json").description.contains("/x/vocab.json"))
    }

    /// Copies share the cache; concurrent use must give the same answers as sequential use.
    @Test func concurrentEncodingIsConsistent() async throws {
        let t = try SharedTokenizers.get(.transformers)
        let prompts = (0..<64).map { "prompt \($0): a \($0 % 7 == 0 ? "tiny" : "giant") robot painting sunflowers 🌻 #\($0 * 31)" }
        let sequential = prompts.map { t.encode($0).ids }
        let concurrent = await withTaskGroup(of: (Int, [Int32]).self) { group in
            for (i, p) in prompts.enumerated() { group.addTask { (i, t.encode(p).ids) } }
            var out = [[Int32]](repeating: [], count: prompts.count)
            for await (i, ids) in group { out[i] = ids }
            return out
        }
        #expect(concurrent == sequential)
    }
}

/// The byte-level readers of vocab.json and merges.txt against Foundation.
@Suite struct FileParsingTests {
    @Test func vocabularyParserMatchesJSONSerialization() throws {
        let data = try Data(contentsOf: TokenizerFolders.clip.appendingPathComponent("vocab.json"))
        let fast = try parseTokenIDObject(Array(data), path: "vocab.json")
        let reference = try JSONSerialization.jsonObject(with: data) as? [String: Int] ?? [:]
        #expect(fast.count == 49408 && reference.count == 49408)
        #expect(fast.allSatisfy { reference[$0.key.string] == Int($0.value) })
    }

    @Test func vocabularyParserHandlesEscapesAndRejectsJunk() throws {
        let text = #" { "a\"b": 1, "\\": 2, "\u00e9\ud83d\udc31": 3, "\n\t/": 4 , "x": 5, "x": 6 } "#
        let parsed = try parseTokenIDObject(Array(text.utf8), path: "v.json")
        let want: [String: Int32] = ["a\"b": 1, "\\": 2, "é🐱": 3, "\n\t/": 4, "x": 6]
        #expect(parsed.count == want.count)
        for (key, id) in want { #expect(parsed[ByteString(key)] == id, "\(key)") }
        #expect(try parseTokenIDObject(Array("{}".utf8), path: "v.json").isEmpty)
        for bad in [#"{"a": 1.5}"#, #"{"a": "1"}"#, #"{"a": 1,}"#, #"["a"]"#, #"{"a": 1} x"#, #"{"\ud800": 1}"#, #"{"a": 99999999999}"#] {
            #expect(throws: TokenizerError.self, "\(bad)") { _ = try parseTokenIDObject(Array(bad.utf8), path: "v.json") }
        }
        #expect(throws: TokenizerError.invalidValue(path: "v.json", key: "a", reason: "negative id -3")) {
            _ = try parseTokenIDObject(Array(#"{"a": -3}"#.utf8), path: "v.json")
        }
    }

    @Test func mergesParserSkipsHeaderAndBlankLines() throws {
        let merges = try parseMerges(Array("#version: 0.2\r\ni n\r\n\nt h</w>\n".utf8), path: "m.txt")
        let lefts = merges.map { String(decoding: $0.left, as: UTF8.self) }
        let rights = merges.map { String(decoding: $0.right, as: UTF8.self) }
        #expect(lefts == ["i", "t"] && rights == ["n", "h</w>"] && merges.map(\.line) == [2, 4])
        #expect(throws: TokenizerError.invalidMerge(path: "m.txt", line: 2, reason: "expected two symbols separated by one space, got \"a  b\"")) {
            _ = try parseMerges(Array("i n\na  b\n".utf8), path: "m.txt")
        }
    }
}
