// Turns the committed pipeline fixtures (tools/make_pipeline_fixtures.py) into loadable checkpoint
// folders: configs are copied, weights are recomputed from each tensor's name and shape (they are
// not stored), and the tokenizer files come from Resources/clip-tokenizer/ so they exist once in
// the repository.
import DeciDiffusion
import DeciImage
import DeciTensor
import DeciWeights
import Foundation
import TestSupport

/// The deterministic weight values shared with tools/make_unet_fixtures.py (`det_values`); the same
/// generator as Tests/DeciModelsTests/UNetTestSupport.swift (test targets cannot share files).
func fixtureWeightValues(key: String, shape: [Int]) -> [Float] {
    var seed: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in key.utf8 { seed = (seed ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    let n = shape.reduce(1, *)
    let scale: Float = shape.count >= 2 ? 1 / Float(shape.dropFirst().reduce(1, *)).squareRoot() : 0
    let isNormScale = shape.count == 1 && key.hasSuffix("weight")
    var out = [Float](repeating: 0, count: n)
    out.withUnsafeMutableBufferPointer { p in
        for i in 0..<n {
            var z = seed &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let u = Float(z >> 40) * 0x1p-23 - 1
            p[i] = shape.count >= 2 ? u * scale : (isNormScale ? 1 + u * 0.25 : u * 0.125)
        }
    }
    return out
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum PipelineFixtures {
    static let root = FixturePaths.url("pipelines")
    static let tokenizerFiles = FixturePaths.root.deletingLastPathComponent().appendingPathComponent("Resources/clip-tokenizer")
    /// The bundled demo model (Models/demo), which the output, limit, fault and preview tests run.
    static let demoFolder = FixturePaths.root.deletingLastPathComponent().appendingPathComponent("Models/demo")

    /// Builds a fresh copy of checkpoint `name` (deci, sd, sd_inpaint) in a temporary folder and
    /// returns its path; the caller may edit it. `adjustments[component][key]` is added to that
    /// tensor's values before their dtype rounding (as tools/make_prompt_fixtures.py does).
    static func materialize(_ name: String, adjustments: [String: [String: Float]] = [:]) throws -> URL {
        let fm = FileManager.default
        let dst = fm.temporaryDirectory.appendingPathComponent("deci-pipeline-\(name)-\(UUID().uuidString)")
        try fm.copyItem(at: root.appendingPathComponent(name), to: dst)
        let tokenizer = dst.appendingPathComponent("tokenizer")
        try fm.createDirectory(at: tokenizer, withIntermediateDirectories: true)
        for file in ["vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"] {
            try fm.copyItem(at: tokenizerFiles.appendingPathComponent(file), to: tokenizer.appendingPathComponent(file))
        }
        for component in try fm.contentsOfDirectory(atPath: dst.path) {
            let manifest = dst.appendingPathComponent(component).appendingPathComponent("weights.manifest.json")
            guard fm.fileExists(atPath: manifest.path) else { continue }
            try writeWeights(manifest: manifest, adjustments: adjustments[component] ?? [:])
            try fm.removeItem(at: manifest)
        }
        return dst
    }

    private static func writeWeights(manifest: URL, adjustments: [String: Float]) throws {
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: manifest)) as? [String: Any]
        guard let file = obj?["file"] as? String, let dt = obj?["dtype"] as? String, let list = obj?["tensors"] as? [[Any]] else {
            throw FixtureError("\(manifest.path) is malformed")
        }
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        for entry in list {
            guard entry.count == 2, let key = entry[0] as? String, let shape = entry[1] as? [Int] else {
                throw FixtureError("\(manifest.path): bad entry \(entry)")
            }
            var values = fixtureWeightValues(key: key, shape: shape)
            if let offset = adjustments[key] { values = values.map { $0 + offset } }
            try writer.add(key, floats: values, shape: shape, as: dt == "F16" ? .F16 : .F32)
        }
        try writer.write(to: manifest.deletingLastPathComponent().appendingPathComponent(file).path)
    }

    /// One load per checkpoint and precision, shared by the tests (generation does not mutate a pipeline).
    private static let cache = PipelineCache()

    static func pipeline(_ name: String, precision: Precision = .f32) throws -> DiffusionPipeline {
        try cache.get(name, precision: precision)
    }

    /// Checkpoint `name` with the prompt fixtures' adjustments (Fixtures/prompts/adjustments.json).
    static func promptPipeline(_ name: String) throws -> DiffusionPipeline {
        try cache.get(name, precision: .f32, adjustments: promptAdjustments)
    }

    static let promptAdjustments: [String: [String: Float]] = {
        guard let data = try? Data(contentsOf: FixturePaths.url("prompts/adjustments.json")),
              let dict = try? JSONDecoder().decode([String: [String: Float]].self, from: data) else { return [:] }
        return dict
    }()

    static func removeCopy(_ url: URL) { try? FileManager.default.removeItem(at: url) }
}

private final class PipelineCache: @unchecked Sendable {
    private let lock = NSLock()
    private var loaded: [String: DiffusionPipeline] = [:]

    func get(_ name: String, precision: Precision, adjustments: [String: [String: Float]] = [:]) throws -> DiffusionPipeline {
        lock.lock()
        defer { lock.unlock() }
        let key = "\(name)/\(precision)\(adjustments.isEmpty ? "" : "/adjusted")"
        if let p = loaded[key] { return p }
        let folder = try PipelineFixtures.materialize(name, adjustments: adjustments)
        defer { PipelineFixtures.removeCopy(folder) }  // weights are memory-mapped or copied at load
        let p = try DiffusionPipeline(folder: folder, precision: precision)
        loaded[key] = p
        return p
    }
}
