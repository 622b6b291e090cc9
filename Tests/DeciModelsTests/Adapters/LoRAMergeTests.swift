// LoRA files and the merge formula on small hand-made files: each format's factors, alpha or
// none, linear / 1x1 / 3x3 targets, names with underscores, and what is refused.
import DeciWeights
import Foundation
import Testing
import TestSupport
@testable import DeciModels

private func write(_ tensors: [(String, [Float], [Int])], metadata: [String: String] = ["format": "pt"]) throws -> String {
    var w = SafeTensorsWriter(metadata: metadata)
    for (k, v, s) in tensors { try w.add(k, floats: v, shape: s) }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("lora-\(UUID().uuidString).safetensors").path
    try w.write(to: path)
    return path
}

private func values(_ n: Int, seed: UInt64) -> [Float] {
    var g = SplitMix(seed: seed)
    return (0..<n).map { _ in g.uniform() }
}

/// `up [out, r] @ down [r, inner]`, by hand.
private func product(_ up: [Float], _ down: [Float], out: Int, r: Int, inner: Int) -> [Float] {
    var d = [Float](repeating: 0, count: out * inner)
    for o in 0..<out { for j in 0..<inner { for k in 0..<r { d[o * inner + j] += up[o * r + k] * down[k * inner + j] } } }
    return d
}

@Suite struct LoRAMergeTests {
    /// A "model" whose module paths hold underscores (`modules_list`), a linear and a 3x3 conv.
    let model: [(String, [Float], [Int])] = [
        ("down_blocks.0.modules_list.1.to_q.weight", values(12, seed: 1), [3, 4]),
        ("down_blocks.0.modules_list.0.conv1.weight", values(2 * 3 * 9, seed: 2), [2, 3, 3, 3]),
        ("down_blocks.0.modules_list.0.conv1.bias", values(2, seed: 3), [2]),
    ]

    func merged(_ lora: LoRAFile, key: String, multiplier: Float = 1) throws -> [Float] {
        let store = try WeightStore.open(try write(model))
        let merge = LoRAMerge([LoRAApplication(file: lora, textEncoderMultiplier: multiplier)], component: .denoiser, store: store)
        #expect(merge.unmatched.isEmpty, "\(merge.unmatched)")
        var v = try store.tensor(key).floats()
        try v.withUnsafeMutableBufferPointer { b in try merge.adjust(key, shape: try store.tensor(key).shape, values: b) }
        return v
    }

    @Test func kohyaLinearAndLoConWithAlpha() throws {
        let (r, upL, downL) = (2, values(3 * 2, seed: 4), values(2 * 4, seed: 5))
        let (upC, downC) = (values(2 * 2, seed: 6), values(2 * 27, seed: 7))
        let path = try write([
            ("lora_unet_down_blocks_0_modules_list_1_to_q.lora_down.weight", downL, [r, 4]),
            ("lora_unet_down_blocks_0_modules_list_1_to_q.lora_up.weight", upL, [3, r]),
            ("lora_unet_down_blocks_0_modules_list_1_to_q.alpha", [1], []),
            ("lora_unet_down_blocks_0_modules_list_0_conv1.lora_down.weight", downC, [r, 3, 3, 3]),
            ("lora_unet_down_blocks_0_modules_list_0_conv1.lora_up.weight", upC, [2, r, 1, 1]),
        ])
        let lora = try LoRAFile(path: path)
        #expect(lora.modules.count == 2 && lora.unsupportedKeys.isEmpty)
        // alpha 1, rank 2: scale 0.5; multiplier 0.8.
        let lin = try merged(lora, key: "down_blocks.0.modules_list.1.to_q.weight", multiplier: 0.8)
        let wantLin = zip(model[0].1, product(upL, downL, out: 3, r: r, inner: 4)).map { $0 + 0.8 * 0.5 * $1 }
        #expect(compare(lin, wantLin).maxAbsDiff <= 1e-6)
        // No alpha: scale 1.
        let conv = try merged(lora, key: "down_blocks.0.modules_list.0.conv1.weight")
        let wantConv = zip(model[1].1, product(upC, downC, out: 2, r: r, inner: 27)).map { $0 + $1 }
        #expect(compare(conv, wantConv).maxAbsDiff <= 1e-6)
    }

    @Test func peftNamesAndMetadataAlphaGiveTheSameMerge() throws {
        let (up, down) = (values(6, seed: 8), values(8, seed: 9))
        let kohya = try LoRAFile(path: try write([
            ("lora_unet_down_blocks_0_modules_list_1_to_q.lora_down.weight", down, [2, 4]),
            ("lora_unet_down_blocks_0_modules_list_1_to_q.lora_up.weight", up, [3, 2]),
            ("lora_unet_down_blocks_0_modules_list_1_to_q.alpha", [4], []),
        ]))
        let peft = try LoRAFile(path: try write([
            ("unet.down_blocks.0.modules_list.1.to_q.lora_A.weight", down, [2, 4]),
            ("unet.down_blocks.0.modules_list.1.to_q.lora_B.weight", up, [3, 2]),
        ], metadata: ["format": "pt", "lora_adapter_metadata": #"{"unet.lora_alpha": 4, "unet.r": 2}"#]))
        let key = "down_blocks.0.modules_list.1.to_q.weight"
        #expect(try merged(kohya, key: key) == merged(peft, key: key))
    }

    @Test func unmatchedAndUnsupportedKeysAreListed() throws {
        let path = try write([
            ("lora_unet_down_blocks_0_modules_list_7_to_q.lora_down.weight", values(8, seed: 1), [2, 4]),
            ("lora_unet_down_blocks_0_modules_list_7_to_q.lora_up.weight", values(6, seed: 2), [3, 2]),
            ("lora_unet_down_blocks_0_modules_list_1_to_q.hada_w1_a", values(4, seed: 3), [2, 2]),
            ("lora_unet_down_blocks_0_modules_list_1_to_q.lora_down.weight", values(8, seed: 1), [2, 4]),
            ("lora_unet_down_blocks_0_modules_list_1_to_q.lora_up.weight", values(6, seed: 2), [3, 2]),
        ])
        let lora = try LoRAFile(path: path)
        #expect(lora.unsupportedKeys == ["lora_unet_down_blocks_0_modules_list_1_to_q.hada_w1_a"])
        #expect(throws: LoRAError.self) { try LoRASet([LoRAApplication(file: lora)]) }
        let lenient = try LoRASet([LoRAApplication(file: lora)], lenient: true)
        #expect(lenient.warnings.count == 1)
        let store = try WeightStore.open(try write(model))
        let merge = LoRAMerge([LoRAApplication(file: lora)], component: .denoiser, store: store)
        #expect(merge.unmatched == ["\(path): lora_unet_down_blocks_0_modules_list_7_to_q"])
        #expect(merge.targetKeys == ["down_blocks.0.modules_list.1.to_q.weight"])
        // Built without going through the merging builders: finish names the target.
        #expect(throws: LoRAError.self) { try merge.finish() }
    }

    @Test func mismatchedShapesAreRefused() throws {
        let lora = try LoRAFile(path: try write([
            ("lora_unet_down_blocks_0_modules_list_1_to_q.lora_down.weight", values(10, seed: 1), [2, 5]),
            ("lora_unet_down_blocks_0_modules_list_1_to_q.lora_up.weight", values(6, seed: 2), [3, 2]),
        ]))
        let store = try WeightStore.open(try write(model))
        let merge = LoRAMerge([LoRAApplication(file: lora)], component: .denoiser, store: store)
        #expect(merge.targetKeys.isEmpty && merge.unmatched.count == 1 && merge.unmatched[0].contains("does not make"))
        #expect(throws: LoRAError.self) { try LoRAFile(path: try write([("unrelated.weight", [1], [1])])) }
    }
}
