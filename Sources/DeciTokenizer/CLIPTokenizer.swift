import Foundation

// Matches transformers' CLIPTokenizer (models/clip/tokenization_clip.py): transformers 5 with the
// tokenizers backend by default, transformers 4's pure-Python class on request; padding/truncation as
// diffusers' StableDiffusionPipeline.encode_prompt calls it (max_length padding, truncation, BOS/EOS).

/// CLIP's byte-level BPE tokenizer, loaded from a checkpoint's `tokenizer/` folder.
///
/// ```swift
/// let tokenizer = try CLIPTokenizer(directory: checkpoint.appendingPathComponent("tokenizer"))
/// let prompt = tokenizer.encode("a photo of a cat")   // 77 ids: 49406 320 1125 539 320 2368 49407 <pad>...
/// if let warning = prompt.truncationWarning { print(warning) }
/// ```
///
/// A value type; copies share a thread-safe word cache, so one tokenizer can serve many threads.
public struct CLIPTokenizer: Sendable {
    /// Which transformers implementation to reproduce. They agree on ordinary prompts and differ on CJK
    /// ideographs, control/format characters, U+FFFD, Greek final sigma and upper-case special-token
    /// text (see the fixtures' `legacy` entries).
    public enum Compatibility: String, Sendable, CaseIterable {
        /// transformers >= 5 `CLIPTokenizer` (backed by the tokenizers library), which is what diffusers
        /// 0.42 loads with current transformers; also transformers 4 `CLIPTokenizerFast`, except that
        /// 4.x matches special tokens written in upper case (`<|ENDOFTEXT|>`) and 5.x does not.
        case transformers
        /// transformers 4.x pure-Python `CLIPTokenizer` without ftfy installed (BERT BasicTokenizer clean-up).
        case legacySlowTokenizer
    }

    public let compatibility: Compatibility
    /// `model_max_length` from tokenizer_config.json (77 for CLIP).
    public let maxLength: Int
    public let bosToken: String
    public let eosToken: String
    public let padToken: String
    public let unknownToken: String
    public let bosTokenID: Int32
    public let eosTokenID: Int32
    public let padTokenID: Int32
    public let unknownTokenID: Int32
    /// Whether the config asked for transformers' decode clean-up (" ." -> "."...); only the legacy
    /// tokenizer applies it: transformers 5 ignores it for BPE tokenizers.
    public let cleanUpTokenizationSpaces: Bool

    /// Token (as UTF-8 bytes, see `ByteString` for why not String) -> id.
    private(set) var vocabulary: [ByteString: Int32]
    /// Token UTF-8 bytes by id (ids are dense: 0 ..< vocabulary size).
    private(set) var idToToken: [[UInt8]?]
    let bpe: BytePairEncoder
    /// Tokens matched on the raw text (transformers 5: non-normalised added tokens; legacy: all of them).
    private(set) var rawMatcher: AddedTokenMatcher
    /// Tokens matched after normalisation (transformers 5, `normalized: true`).
    private(set) var normalizedMatcher: AddedTokenMatcher
    let cache = WordCache()

    /// Loads vocab.json, merges.txt, tokenizer_config.json and (if present) special_tokens_map.json from
    /// `directory`.
    public init(directory: URL, compatibility: Compatibility = .transformers) throws {
        try self.init(files: CLIPTokenizerFiles(directory: directory), compatibility: compatibility)
    }

    /// Loads explicitly named files. Special tokens come from tokenizer_config.json, overridden by
    /// special_tokens_map.json unless tokenizer_config.json has `added_tokens_decoder` (transformers'
    /// precedence); CLIPTokenizer's defaults apply to tokens neither file names. Throws `TokenizerError`
    /// naming the file and the problem.
    public init(files: CLIPTokenizerFiles, compatibility: Compatibility = .transformers) throws {
        self.compatibility = compatibility
        let settings = try TokenizerSettings.load(config: files.tokenizerConfig, specialTokensMap: files.specialTokensMap)
        maxLength = settings.maxLength
        cleanUpTokenizationSpaces = settings.cleanUpTokenizationSpaces

        var vocab = try parseTokenIDObject(Array(try readFile(files.vocabulary)), path: files.vocabulary.path)
        // Added tokens may carry ids of their own (added_tokens_decoder); they join the vocabulary.
        for (id, token) in settings.addedTokensDecoder where vocab[ByteString(token.content)] == nil {
            vocab[ByteString(token.content)] = id
        }
        func specialID(_ role: String) throws -> (String, Int32) {
            guard let spec = settings.specialTokens.last(where: { $0.role == role })?.token else {
                throw TokenizerError.missingKey(path: files.tokenizerConfig.path, key: role)
            }
            guard let id = vocab[ByteString(spec.content)] else {
                throw TokenizerError.specialTokenNotInVocabulary(
                    role: role, token: spec.content, path: settings.specialTokenSource[role] ?? files.tokenizerConfig.path)
            }
            return (spec.content, id)
        }
        (bosToken, bosTokenID) = try specialID("bos_token")
        (eosToken, eosTokenID) = try specialID("eos_token")
        (padToken, padTokenID) = try specialID("pad_token")
        (unknownToken, unknownTokenID) = try specialID("unk_token")

        let merges = try parseMerges(Array(try readFile(files.merges)), path: files.merges.path)
        // The Python tokenizer reads at most the 48894 merges of the original CLIP vocabulary.
        bpe = try BytePairEncoder(vocabulary: vocab, merges: merges, mergesPath: files.merges.path,
                                  maxMerges: compatibility == .legacySlowTokenizer ? 49152 - 256 - 2 : nil,
                                  unknownID: unknownTokenID)
        vocabulary = vocab
        let maxID = Int(vocab.values.max() ?? 0)
        guard maxID < 2 * vocab.count + 1024 else {
            let key = vocab.first { $0.value == maxID }?.key.string ?? ""
            throw TokenizerError.invalidValue(path: files.vocabulary.path, key: key,
                                              reason: "id \(maxID) is far beyond the \(vocab.count) entries")
        }
        var inverse = [[UInt8]?](repeating: nil, count: maxID + 1)
        for (token, id) in vocab { inverse[Int(id)] = token.bytes }
        idToToken = inverse

        // Register added tokens the way transformers does: added_tokens_decoder first; then the special
        // tokens not already there, where an object is skipped if an equal-content object came before
        // and a plain string always re-registers (so it overrides the `normalized` flag).
        var order: [String] = []
        var flags: [String: Bool] = [:]
        var seenObjects: Set<String> = []
        func register(_ content: String, normalized: Bool) {
            if flags[content] == nil { order.append(content) }
            flags[content] = normalized
        }
        for (_, token) in settings.addedTokensDecoder { register(token.content, normalized: token.normalized) }
        let fromDecoder = Set(settings.addedTokensDecoder.map { $0.token.content })
        for (_, token) in settings.specialTokens where !fromDecoder.contains(token.content) {
            if token.fromObject {
                if seenObjects.contains(token.content) { continue }
                seenObjects.insert(token.content)
            }
            register(token.content, normalized: token.normalized)
        }
        var raw: [AddedTokenMatcher.Entry] = [], normalized: [AddedTokenMatcher.Entry] = []
        for content in order {
            guard let id = vocab[ByteString(content)] else {
                throw TokenizerError.specialTokenNotInVocabulary(role: "added token", token: content,
                                                                 path: files.tokenizerConfig.path)
            }
            let entry = AddedTokenMatcher.Entry(scalars: Array(content.unicodeScalars), id: id)
            if compatibility == .transformers && flags[content] == true { normalized.append(entry) } else { raw.append(entry) }
        }
        rawMatcher = AddedTokenMatcher(raw)
        normalizedMatcher = AddedTokenMatcher(normalized)
    }

    // MARK: Encoding

    /// Token ids of `text` without BOS/EOS, untruncated.
    public func contentTokenIDs(_ text: String) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var ids: [Int32] = []
        ids.reserveCapacity(scalars.count / 3 + 4)
        rawMatcher.split(scalars[...], plain: { segment in
            switch compatibility {
            case .transformers:
                let normalized = normalizeTokenizersBackend(segment)
                normalizedMatcher.split(normalized[...], plain: { part in
                    splitCLIPPattern(Array(part), caseInsensitive: false) { piece in
                        switch piece {
                        case .word(let w):
                            appendWord(w, to: &ids)
                        case .specialLiteral(let w):
                            // The ByteLevel pre-tokenizer's GPT-2 pattern cuts "<|endoftext|>" into
                            // "<|", "endoftext", "|>", each BPE-encoded as a word of its own.
                            appendWord(w.prefix(2), to: &ids)
                            appendWord(w.dropFirst(2).dropLast(2), to: &ids)
                            appendWord(w.suffix(2), to: &ids)
                        }
                    }
                }, token: { ids.append($0) })
            case .legacySlowTokenizer:
                splitCLIPPattern(normalizeLegacy(segment), caseInsensitive: true) { piece in
                    switch piece {
                    case .word(let w):
                        appendWord(w, to: &ids)
                    case .specialLiteral(let w):
                        // The Python BPE cache is seeded with the two literals, which map to their ids whole.
                        if w.elementsEqual("<|startoftext|>".unicodeScalars) || w.elementsEqual("<|endoftext|>".unicodeScalars) {
                            ids.append(vocabulary[ByteString(utf8Bytes(w))] ?? unknownTokenID)
                        } else {
                            appendWord(w, to: &ids)
                        }
                    }
                }
            }
        }, token: { ids.append($0) })
        return ids
    }

    private func appendWord(_ word: ArraySlice<Unicode.Scalar>, to ids: inout [Int32]) {
        guard !word.isEmpty else { return }
        let bytes = utf8Bytes(word)
        let key = ByteString(bytes)
        if let cached = cache.get(key) {
            ids.append(contentsOf: cached)
            return
        }
        var encoded: [Int32] = []
        bpe.encodeWord(bytes, into: &encoded)
        cache.set(key, encoded)
        ids.append(contentsOf: encoded)
    }

    /// `<bos> ids <eos>` with no length limit: what diffusers' `padding="longest"` call returns.
    public func tokenize(_ text: String) -> [Int32] {
        [bosTokenID] + contentTokenIDs(text) + [eosTokenID]
    }

    /// Ids exactly `maxLength` long: BOS, the text's tokens (truncated to fit), EOS, then padding, as
    /// diffusers' `tokenizer(prompt, padding="max_length", max_length=77, truncation=True)`. Also reports
    /// what truncation dropped, as diffusers' warning does.
    public func encode(_ text: String) -> TokenizedPrompt {
        let full = tokenize(text)
        var ids: [Int32]
        var dropped: [Int32] = []
        if full.count > maxLength {
            ids = Array(full[0..<(maxLength - 1)]) + [eosTokenID]
            dropped = Array(full[(maxLength - 1)..<(full.count - 1)])
        } else {
            ids = full
        }
        let count = ids.count
        ids.append(contentsOf: repeatElement(padTokenID, count: maxLength - count))
        return TokenizedPrompt(ids: ids, count: count, untruncatedCount: full.count, droppedIDs: dropped,
                               droppedText: dropped.isEmpty ? nil : decode(dropped))
    }

    /// `encode` for each prompt, in order (diffusers tokenizes a prompt list the same way, row by row).
    public func encode(_ texts: [String]) -> [TokenizedPrompt] { texts.map { encode($0) } }

    // MARK: Decoding

    /// Text for token ids as transformers' `decode` (special tokens kept, byte-level bytes reassembled as
    /// UTF-8 with U+FFFD for broken sequences, `</w>` turned into spaces, ends stripped). Unknown ids are
    /// skipped.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0, Int(id) < idToToken.count, let tokenUTF8 = idToToken[Int(id)] else { continue }
            var tokenBytes: [UInt8] = []
            var allMapped = true
            for s in String(decoding: tokenUTF8, as: UTF8.self).unicodeScalars {
                guard let b = ByteAlphabet.bytes[s.value] else {
                    allMapped = false
                    break
                }
                tokenBytes.append(b)
            }
            // tokenizers' ByteLevel decoder keeps a token with any unmapped character as its raw UTF-8.
            bytes.append(contentsOf: allMapped ? tokenBytes : tokenUTF8)
        }
        var text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "</w>", with: " ")
        text = stripPythonWhitespace(text)
        if compatibility == .legacySlowTokenizer && cleanUpTokenizationSpaces {
            for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                               (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
                text = text.replacingOccurrences(of: from, with: to)
            }
        }
        return text
    }

    /// Vocabulary id of a token string (including added tokens), if any.
    public func tokenID(_ token: String) -> Int32? { vocabulary[ByteString(token)] }

    /// Token string for an id, if any.
    public func token(for id: Int32) -> String? {
        guard id >= 0, Int(id) < idToToken.count, let bytes = idToToken[Int(id)] else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Number of entries in the vocabulary, added tokens included.
    public var vocabularySize: Int { vocabulary.count }

    /// A copy that knows textual-inversion tokens as diffusers' `load_textual_inversion` adds them:
    /// `name` (then `name_1`, ... for more vectors) as added tokens with the next free ids, matched
    /// like transformers' normalised added tokens; writing `name` in a prompt gives all its ids, as
    /// diffusers' `maybe_convert_prompt` expands it. Returns the ids of each name's vectors. Throws
    /// when a name is already a token.
    public func addingEmbeddingTokens(_ tokens: [(name: String, vectors: Int)]) throws(TokenizerError) -> (CLIPTokenizer, [[Int32]]) {
        var copy = self
        var next = Int32(idToToken.count)
        var raw = rawMatcher.entries, normalized = normalizedMatcher.entries, allIDs: [[Int32]] = []
        for (name, vectors) in tokens {
            let names = [name] + (1..<max(vectors, 1)).map { "\(name)_\($0)" }
            var ids: [Int32] = []
            for n in names {
                guard copy.vocabulary[ByteString(n)] == nil, !n.isEmpty else {
                    throw TokenizerError.invalidValue(path: "textual inversion", key: n, reason: "the token is already in the tokenizer's vocabulary")
                }
                copy.vocabulary[ByteString(n)] = next
                copy.idToToken.append(Array(n.utf8))
                ids.append(next)
                next += 1
            }
            switch compatibility {
            case .transformers:
                // Normalised added tokens are matched on normalised text, their content normalised alike.
                let content = normalizeTokenizersBackend(Array(name.unicodeScalars)[...])
                normalized.append(AddedTokenMatcher.Entry(scalars: content, id: ids[0], following: Array(ids.dropFirst())))
            case .legacySlowTokenizer:
                raw.append(AddedTokenMatcher.Entry(scalars: Array(name.unicodeScalars), id: ids[0], following: Array(ids.dropFirst())))
            }
            allIDs.append(ids)
        }
        copy.rawMatcher = AddedTokenMatcher(raw)
        copy.normalizedMatcher = AddedTokenMatcher(normalized)
        return (copy, allIDs)
    }
}

func utf8Bytes(_ scalars: ArraySlice<Unicode.Scalar>) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(scalars.count)
    for s in scalars {
        let v = s.value
        switch v {
        case 0..<0x80:
            out.append(UInt8(v))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (v >> 6)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (v >> 12)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (v >> 18)))
            out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }
    return out
}

func stripPythonWhitespace(_ text: String) -> String {
    let scalars = Array(text.unicodeScalars)
    guard let first = scalars.firstIndex(where: { !UnicodeClass.isPythonSpace($0) }),
          let last = scalars.lastIndex(where: { !UnicodeClass.isPythonSpace($0) }) else { return "" }
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars[first...last])
    return String(view)
}

/// One prompt, tokenised to a fixed length.
public struct TokenizedPrompt: Sendable, Equatable {
    /// Exactly `maxLength` ids: BOS, text tokens, EOS, padding.
    public var ids: [Int32]
    /// Ids before padding, BOS and EOS included.
    public var count: Int
    /// Length the prompt would have had without truncation, BOS and EOS included.
    public var untruncatedCount: Int
    /// Text tokens cut off by truncation (diffusers' `untruncated_ids[:, max_length - 1 : -1]`).
    public var droppedIDs: [Int32]
    /// `droppedIDs` decoded: the part diffusers names in its truncation warning.
    public var droppedText: String?

    public init(ids: [Int32], count: Int, untruncatedCount: Int, droppedIDs: [Int32], droppedText: String?) {
        self.ids = ids
        self.count = count
        self.untruncatedCount = untruncatedCount
        self.droppedIDs = droppedIDs
        self.droppedText = droppedText
    }

    public var isTruncated: Bool { !droppedIDs.isEmpty }

    /// 1 for real tokens, 0 for padding (padding="max_length" attention mask).
    public var attentionMask: [Int32] {
        (0..<ids.count).map { $0 < count ? 1 : 0 }
    }

    /// diffusers' warning text for a truncated prompt, nil otherwise. diffusers prints the decoded part
    /// inside a Python list (`['...']`); this gives the plain text.
    public var truncationWarning: String? {
        guard let text = droppedText else { return nil }
        return "The following part of your input was truncated because CLIP can only handle sequences up to "
            + "\(ids.count) tokens: \(text)"
    }
}
