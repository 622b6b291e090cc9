@testable import DeciBenchmarks
import DeciModels
import DeciWeights
import Foundation
import Testing

/// The random-weight checkpoints `bench` times must have the real models' shapes, or the timings
/// would not be the model card's; full-size folders are too large to write in a test, so the plans
/// and the writer are checked on their own.
@Suite("Random-weight checkpoints")
struct RandomCheckpointTests {
    @Test("CLIP ViT-L/14 text tower plan has the published parameter count")
    func clipPlanCount() throws {
        let count = try RandomCheckpoint.clipPlan().reduce(0) { $0 + $1.shape.reduce(1, *) }
        #expect(count == 123_060_480)
    }

    @Test("VAE plan is the model's complete checkpoint, in key order")
    func vaePlanMatchesModel() throws {
        let plan = try RandomCheckpoint.vaePlan(AutoencoderKLConfig.stableDiffusion)
        let keys = plan.map(\.key)
        #expect(keys == keys.sorted())
        #expect(Dictionary(uniqueKeysWithValues: plan.map { ($0.key, $0.shape) }) == (try AutoencoderKLConfig.stableDiffusion.checkpointShapes()))
    }

    @Test("Random weights are deterministic fp16 with unit norm scales and fan-in-bounded matrices")
    func writtenWeights() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("decibench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let plan: [(key: String, shape: [Int])] = [("norm.weight", [8]), ("proj.weight", [4, 16]), ("proj.bias", [4])]
        let a = dir.appendingPathComponent("a/model.safetensors"), b = dir.appendingPathComponent("b/model.safetensors")
        try RandomCheckpoint.writeWeights(plan, to: a, log: { _ in })
        try RandomCheckpoint.writeWeights(plan, to: b, log: { _ in })
        #expect(try Data(contentsOf: a) == Data(contentsOf: b))
        let file = try SafeTensorsFile(url: a)
        let norm = try file.tensor("norm.weight"), proj = try file.tensor("proj.weight"), bias = try file.tensor("proj.bias")
        #expect(norm.dtype == .F16 && proj.shape == [4, 16])
        #expect(try norm.floats() == [Float](repeating: 1, count: 8))
        #expect(try proj.floats().allSatisfy { abs($0) <= 0.25 })
        #expect(try bias.floats().allSatisfy { abs($0) <= 0.02 })
    }
}
