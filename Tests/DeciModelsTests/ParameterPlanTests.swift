@testable import DeciModels
import DeciTensor
import DeciWeights
import Foundation
import Testing

/// Plans come from building the real modules over a recording store. Their tensor order is part of
/// the contract: the benchmarks' random checkpoints draw values in plan order, so a reordering
/// would silently change every file they write. The fingerprints pin the order of the plans they
/// write unsorted (the VAE's they sort by key).
@Suite("Parameter plans")
struct ParameterPlanTests {
    /// FNV-1a over "key shape" lines, in plan order.
    static func fingerprint(_ entries: [(key: String, shape: [Int])]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for e in entries {
            for byte in "\(e.key) \(e.shape)\n".utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        return h
    }

    @Test("full-size plans keep their tensor order")
    func orderFingerprints() throws {
        let nas = try UNetNASConfig.decode(Data(publishedNASConfig.utf8)).parameterPlan()
        let sd15 = try UNet2DConditionConfig.decode(Data(sd15Config.utf8)).parameterPlan()
        let clip = try CLIPTextConfig.vitL14.parameterPlan()
        #expect(nas.entries.count == 612 && Self.fingerprint(nas.entries) == 0x0ecb_9f78_dc49_bfc1)
        #expect(sd15.entries.count == 686 && Self.fingerprint(sd15.entries) == 0xc4b3_5273_fe35_9900)
        #expect(clip.entries.count == 196 && Self.fingerprint(clip.entries) == 0x1f90_0190_d2c7_768b)
        // The shell leads the UNet plans, each weight is followed by its bias.
        #expect(nas.entries.prefix(4).map(\.key) == ["conv_in.weight", "conv_in.bias", "time_embedding.linear_1.weight", "time_embedding.linear_1.bias"])
        #expect(clip.entries[2...5].map(\.key) == ["encoder.layers.0.self_attn.q_proj.weight", "encoder.layers.0.self_attn.q_proj.bias",
                                                   "encoder.layers.0.self_attn.k_proj.weight", "encoder.layers.0.self_attn.k_proj.bias"])
    }

    @Test("a model built for a plan holds placeholder layers only")
    func planModelsArePlaceholders() throws {
        let store = WeightStore.recording()
        let model = try UNetNAS(config: UNetNASConfig.decode(Data(publishedNASConfig.utf8)), weights: store.scoped(""), precision: .f32)
        #expect(model.shell.conv_in.isPlaceholder && model.shell.conv_norm_out.isPlaceholder && model.shell.time_embedding.linear_1.isPlaceholder)
        #expect(store.recordedShapes().count == (try model.config.parameterPlan().entries.count))
        let clip = try CLIPTextModel(config: .vitL14, weights: WeightStore.recording().scoped(""), precision: .f32)
        #expect(clip.token_embedding.isPlaceholder && clip.final_layer_norm.isPlaceholder)
    }

    @Test("an invalid config fails planning with the model's own error")
    func invalidConfigThrows() {
        var bad = AutoencoderKLConfig.stableDiffusion
        bad.normNumGroups = 7
        #expect(throws: ModelError.self) { _ = try bad.parameterPlan() }
    }
}
