import Foundation
import TestSupport
@testable import DeciTokenizer

/// One prompt of a fixture file: transformers 5's answer, and transformers 4's slow tokenizer's where
/// it differs.
struct PromptCase: Decodable {
    struct Answer: Decodable, Equatable {
        var ids: [Int32]
        var untruncated: [Int32]?
        var removed: String?
    }
    var text: String
    var answer: Answer
    var legacy: Answer?

    enum CodingKeys: String, CodingKey { case text, ids, untruncated, removed, legacy }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        text = try c.decode(String.self, forKey: .text)
        answer = Answer(ids: try c.decode([Int32].self, forKey: .ids),
                        untruncated: try c.decodeIfPresent([Int32].self, forKey: .untruncated),
                        removed: try c.decodeIfPresent(String.self, forKey: .removed))
        legacy = try c.decodeIfPresent(Answer.self, forKey: .legacy)
    }

    func expected(_ mode: CLIPTokenizer.Compatibility) -> Answer {
        mode == .transformers ? answer : (legacy ?? answer)
    }
}

struct PromptFixture: Decodable {
    var pad_id: Int32
    var legacy_pad_id: Int32
    var max_length: Int
    var cases: [PromptCase]

    static func load(_ name: String) throws -> PromptFixture {
        try JSONDecoder().decode(PromptFixture.self, from: Data(contentsOf: FixturePaths.url("tokenizer/\(name)")))
    }
}

enum TokenizerFolders {
    /// The committed CLIP ViT-L/14 tokenizer files (Resources/clip-tokenizer).
    static let clip: URL = FixturePaths.root.deletingLastPathComponent()
        .appendingPathComponent("Resources/clip-tokenizer")

    /// The real vocabulary with the config files of a fixture variant folder.
    static func variant(_ name: String) -> CLIPTokenizerFiles {
        let dir = FixturePaths.url("tokenizer/\(name)")
        return CLIPTokenizerFiles(vocabulary: clip.appendingPathComponent("vocab.json"),
                                  merges: clip.appendingPathComponent("merges.txt"),
                                  tokenizerConfig: dir.appendingPathComponent("tokenizer_config.json"),
                                  specialTokensMap: dir.appendingPathComponent("special_tokens_map.json"))
    }
}

/// Loading the 49408-entry vocabulary takes a moment in debug builds: share one per mode.
enum SharedTokenizers {
    static let transformers: Result<CLIPTokenizer, Error> = Result {
        try CLIPTokenizer(directory: TokenizerFolders.clip, compatibility: .transformers)
    }
    static let legacy: Result<CLIPTokenizer, Error> = Result {
        try CLIPTokenizer(directory: TokenizerFolders.clip, compatibility: .legacySlowTokenizer)
    }
    static func get(_ mode: CLIPTokenizer.Compatibility) throws -> CLIPTokenizer {
        try (mode == .transformers ? transformers : legacy).get()
    }
}

func describe(_ text: String) -> String {
    text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }
        .joined().prefix(120).description
}

/// A scratch folder with the given files, removed by the caller.
func scratchFolder(_ files: [String: String]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("decitok-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, content) in files {
        try content.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }
    return dir
}
