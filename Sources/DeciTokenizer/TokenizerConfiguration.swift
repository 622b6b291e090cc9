import Foundation

/// The four files of a checkpoint's `tokenizer/` folder.
public struct CLIPTokenizerFiles: Sendable, Equatable {
    public var vocabulary: URL
    public var merges: URL
    public var tokenizerConfig: URL
    /// Optional: old checkpoints keep their special tokens here; transformers ignores it when
    /// tokenizer_config.json has `added_tokens_decoder`.
    public var specialTokensMap: URL?

    public init(vocabulary: URL, merges: URL, tokenizerConfig: URL, specialTokensMap: URL?) {
        self.vocabulary = vocabulary
        self.merges = merges
        self.tokenizerConfig = tokenizerConfig
        self.specialTokensMap = specialTokensMap
    }

    /// The standard names inside `directory`; special_tokens_map.json is used only if present.
    public init(directory: URL) {
        let map = directory.appendingPathComponent("special_tokens_map.json")
        self.init(vocabulary: directory.appendingPathComponent("vocab.json"),
                  merges: directory.appendingPathComponent("merges.txt"),
                  tokenizerConfig: directory.appendingPathComponent("tokenizer_config.json"),
                  specialTokensMap: FileManager.default.fileExists(atPath: map.path) ? map : nil)
    }
}

/// A token that is matched in the raw text before BPE (transformers' `AddedToken`).
struct AddedTokenSpec: Equatable {
    var content: String
    /// Matched after normalisation (lower-casing...) instead of on the raw text, in the tokenizers backend.
    var normalized: Bool
    /// Written as an object rather than a plain string: transformers de-duplicates objects by content but
    /// lets a later plain string override them.
    var fromObject: Bool
}

/// Settings read from tokenizer_config.json and special_tokens_map.json with transformers' precedence.
struct TokenizerSettings {
    var maxLength: Int
    /// bos, eos, unk, sep, pad, cls, mask in transformers' order, then extra special tokens.
    var specialTokens: [(role: String, token: AddedTokenSpec)]
    /// `added_tokens_decoder` entries (id -> token), in id order.
    var addedTokensDecoder: [(id: Int32, token: AddedTokenSpec)]
    var cleanUpTokenizationSpaces: Bool
    /// The file each special token was finally read from, for error messages.
    var specialTokenSource: [String: String]

    static let namedRoles = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
    /// CLIPTokenizer's constructor defaults, used only when neither file names the token.
    static let classDefaults = ["bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"]

    static func load(config: URL, specialTokensMap: URL?) throws -> TokenizerSettings {
        let configObject = try readJSONObject(config)
        var values: [String: (value: Any, file: String)] = [:]
        for (key, value) in configObject { values[key] = (value, config.path) }

        var decoder: [(Int32, AddedTokenSpec)] = []
        if let rawDecoder = configObject["added_tokens_decoder"] {
            guard let entries = rawDecoder as? [String: Any] else {
                throw TokenizerError.invalidValue(path: config.path, key: "added_tokens_decoder", reason: "not an object")
            }
            for (idText, entry) in entries {
                let key = "added_tokens_decoder.\(idText)"
                guard let id = Int32(idText), id >= 0 else {
                    throw TokenizerError.invalidValue(path: config.path, key: key, reason: "key is not a token id")
                }
                guard let token = try parseToken(entry, path: config.path, key: key) else {
                    throw TokenizerError.invalidValue(path: config.path, key: key, reason: "null token")
                }
                decoder.append((id, token))
            }
            decoder.sort { $0.0 < $1.0 }
        } else if let mapURL = specialTokensMap {
            // Legacy layout (no added_tokens_decoder): special_tokens_map.json overrides tokenizer_config.json.
            for (key, value) in try readJSONObject(mapURL) { values[key] = (value, mapURL.path) }
        }

        var specials: [(String, AddedTokenSpec)] = []
        var sources: [String: String] = [:]
        for role in namedRoles {
            if let (value, file) = values[role] {
                if let token = try parseToken(value, path: file, key: role) {
                    specials.append((role, token))
                    sources[role] = file
                }
            } else if let fallback = classDefaults[role] {
                specials.append((role, AddedTokenSpec(content: fallback, normalized: false, fromObject: false)))
                sources[role] = config.path
            }
        }
        for listKey in ["additional_special_tokens", "extra_special_tokens"] {
            guard let (value, file) = values[listKey], !(value is NSNull) else { continue }
            let items: [Any]
            if let list = value as? [Any] { items = list }
            else if let dict = value as? [String: Any] { items = dict.keys.sorted().compactMap { dict[$0] } }
            else { throw TokenizerError.invalidValue(path: file, key: listKey, reason: "not a list") }
            for (i, item) in items.enumerated() {
                if let token = try parseToken(item, path: file, key: "\(listKey)[\(i)]") {
                    specials.append((listKey, token))
                    sources[listKey] = file
                }
            }
        }

        guard let (rawLength, lengthFile) = values["model_max_length"] else {
            throw TokenizerError.missingKey(path: config.path, key: "model_max_length")
        }
        guard let number = rawLength as? NSNumber,
              number.doubleValue == number.doubleValue.rounded(), number.doubleValue >= 2,
              number.doubleValue <= 1_000_000 else {
            throw TokenizerError.invalidValue(path: lengthFile, key: "model_max_length",
                                              reason: "expected an integer from 2 to 1000000, got \(rawLength)")
        }

        var cleanUp = false
        if let (value, file) = values["clean_up_tokenization_spaces"], !(value is NSNull) {
            guard let flag = value as? Bool else {
                throw TokenizerError.invalidValue(path: file, key: "clean_up_tokenization_spaces", reason: "not a boolean")
            }
            cleanUp = flag
        }
        return TokenizerSettings(maxLength: number.intValue, specialTokens: specials, addedTokensDecoder: decoder,
                                 cleanUpTokenizationSpaces: cleanUp, specialTokenSource: sources)
    }

    /// A token given as a plain string or as an AddedToken object with a `content` field; nil for JSON null.
    static func parseToken(_ value: Any, path: String, key: String) throws -> AddedTokenSpec? {
        if value is NSNull { return nil }
        if let text = value as? String { return AddedTokenSpec(content: text, normalized: false, fromObject: false) }
        if let object = value as? [String: Any] {
            guard let content = object["content"] as? String else {
                throw TokenizerError.invalidValue(path: path, key: key, reason: "object without a string \"content\"")
            }
            var normalized = false
            if let flag = object["normalized"] {
                guard let bool = flag as? Bool else {
                    throw TokenizerError.invalidValue(path: path, key: key + ".normalized", reason: "not a boolean")
                }
                normalized = bool
            }
            return AddedTokenSpec(content: content, normalized: normalized, fromObject: true)
        }
        throw TokenizerError.invalidValue(path: path, key: key, reason: "expected a string or an object with \"content\"")
    }
}

func readFile(_ url: URL) throws -> Data {
    guard FileManager.default.fileExists(atPath: url.path) else { throw TokenizerError.missingFile(path: url.path) }
    do {
        return try Data(contentsOf: url)
    } catch {
        throw TokenizerError.unreadableFile(path: url.path, reason: "\(error)")
    }
}

func readJSONObject(_ url: URL) throws -> [String: Any] {
    let data = try readFile(url)
    let parsed: Any
    do {
        parsed = try JSONSerialization.jsonObject(with: data)
    } catch {
        throw TokenizerError.invalidJSON(path: url.path, reason: "\(error.localizedDescription)")
    }
    guard let object = parsed as? [String: Any] else {
        throw TokenizerError.invalidJSON(path: url.path, reason: "top level is not an object")
    }
    return object
}
