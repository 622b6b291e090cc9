import Foundation

/// Why a tokenizer folder could not be loaded. Every case names the file it is about.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A required file is absent.
    case missingFile(path: String)
    /// A file exists but could not be read or is not UTF-8.
    case unreadableFile(path: String, reason: String)
    /// A JSON file does not parse, or its top level is not the expected kind of value.
    case invalidJSON(path: String, reason: String)
    /// A required key is absent from a JSON file.
    case missingKey(path: String, key: String)
    /// A key holds a value of the wrong kind or out of range.
    case invalidValue(path: String, key: String, reason: String)
    /// A line of merges.txt is not two space-separated symbols, or names symbols the vocabulary lacks.
    case invalidMerge(path: String, line: Int, reason: String)
    /// A special token (bos/eos/unk/pad...) is neither in vocab.json nor in `added_tokens_decoder`.
    case specialTokenNotInVocabulary(role: String, token: String, path: String)

    public var description: String {
        switch self {
        case .missingFile(let path): return "\(path): file not found"
        case .unreadableFile(let path, let reason): return "\(path): cannot read: \(reason)"
        case .invalidJSON(let path, let reason): return "\(path): invalid JSON: \(reason)"
        case .missingKey(let path, let key): return "\(path): missing key \"\(key)\""
        case .invalidValue(let path, let key, let reason): return "\(path): key \"\(key)\": \(reason)"
        case .invalidMerge(let path, let line, let reason): return "\(path):\(line): \(reason)"
        case .specialTokenNotInVocabulary(let role, let token, let path):
            return "\(path): \(role) \"\(token)\" is not in the vocabulary"
        }
    }
}
