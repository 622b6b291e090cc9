import DeciTensor
import DeciWeights
import Foundation
import Testing
import TestSupport

import DeciModels

enum SDCases {
    static let names = ["sd1", "sd2", "inpaint"]
}

/// shared/spec/sd15_unet.config.json, embedded.
let sd15Config = """
{"_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
 "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false, "cross_attention_dim": 768,
 "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
 "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
 "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
 "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}
"""

/// Stable Diffusion 2.1's unet/config.json as a recent diffusers writes it (every optional key, most
/// null): per-block heads, linear projections, 1024-wide text states.
let sd21Config = """
{"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.10.0.dev0", "act_fn": "silu", "attention_head_dim": [5, 10, 20, 20],
 "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false, "cross_attention_dim": 1024,
 "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
 "downsample_padding": 1, "dual_cross_attention": false, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
 "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "num_class_embeds": null,
 "only_cross_attention": false, "out_channels": 4, "sample_size": 96,
 "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
 "upcast_attention": true, "use_linear_projection": true, "class_embed_type": null, "addition_embed_type": null,
 "num_attention_heads": null, "time_cond_proj_dim": null, "encoder_hid_dim": null, "mid_block_type": "UNetMidBlock2DCrossAttn",
 "resnet_time_scale_shift": "default", "timestep_post_act": null, "time_embedding_type": "positional", "conv_in_kernel": 3,
 "conv_out_kernel": 3, "projection_class_embeddings_input_dim": null, "transformer_layers_per_block": 1,
 "reverse_transformer_layers_per_block": null, "cross_attention_norm": null, "mid_block_only_cross_attention": null,
 "resnet_out_scale_factor": 1.0, "resnet_skip_time_act": false, "attention_type": "default", "time_embedding_act_fn": null,
 "time_embedding_dim": null, "addition_time_embed_dim": null, "class_embeddings_concat": false, "encoder_hid_dim_type": null,
 "addition_embed_type_num_heads": 64, "dropout": 0.0}
"""

private func runSD(_ name: String, precision: Precision) throws -> (Comparison, UNet2DConditionModel) {
    let fx = try UNetFixture("models/unet_sd/\(name)")
    let config = try UNet2DConditionConfig.decode(fx.configData, source: name)
    let model = try UNet2DConditionModel(config: config, weights: try fx.weights().scoped(""), precision: precision)
    let (sample, t, context) = try fx.inputs()
    let out = model(sample, timesteps: t, context: context)
    return (compare(out.toNCHW(), try fx.floats("output")), model)
}

@Suite("UNet2DConditionModel")
struct UNet2DConditionTests {
    @Test("f32 forward matches diffusers", arguments: SDCases.names)
    func parityF32(_ name: String) throws {
        let (c, _) = try runSD(name, precision: .f32)
        print("UNet2DCondition \(name) f32: \(c)")
        #expect(c.within(relative: f32Tolerance), "\(name): \(c)")
    }

    @Test("f32 forward with every eligible conv as Winograd matches diffusers", arguments: SDCases.names)
    func parityWinograd(_ name: String) throws {
        try expectWinogradParity("UNet2DCondition \(name)") { try runSD(name, precision: .f32).0 }
    }

    @Test("bf16 forward with every eligible conv as Winograd stays close to the f32 reference", arguments: SDCases.names)
    func bf16Winograd(_ name: String) throws {
        try expectBF16WinogradParity("UNet2DCondition \(name)") { try runSD(name, precision: .bf16).0 }
    }

    @Test("bf16 forward stays close to the f32 reference", arguments: SDCases.names)
    func parityBF16(_ name: String) throws {
        let (c, _) = try runSD(name, precision: .bf16)
        print("UNet2DCondition \(name) bf16: \(c)")
        #expect(c.within(relative: bf16Tolerance), "\(name): \(c)")
    }

    @Test("parameter plan equals diffusers' state dict", arguments: SDCases.names)
    func planMatchesReference(_ name: String) throws {
        let fx = try UNetFixture("models/unet_sd/\(name)")
        let plan = try UNet2DConditionConfig.decode(fx.configData).parameterPlan()
        let want = Dictionary(uniqueKeysWithValues: fx.tensors.map { ($0.key, $0.shape) })
        #expect(plan.entries.count == fx.tensors.count)
        #expect(plan.shapes == want)
        for (k, s) in want where plan.shapes[k] != s { Issue.record("\(k): plan \(plan.shapes[k] ?? []) reference \(s)") }
    }

    @Test("SD 1.5 config: 859,520,964 parameters, latent multiple 8")
    func sd15Count() throws {
        let config = try UNet2DConditionConfig.decode(Data(sd15Config.utf8))
        #expect(try UNet2DConditionModel.parameterCount(config) == 859_520_964)
        // Up-block resnet inputs: (j == 0 ? prev_output_channel : out) + (j == last ? mirrored in : out).
        let s = try config.parameterPlan().shapes
        let widths = (0..<4).map { i in (0..<3).compactMap { j in s["up_blocks.\(i).resnets.\(j).conv1.weight"]?[1] } }
        #expect(widths == [[2560, 2560, 2560], [2560, 2560, 1920], [1920, 1280, 960], [960, 640, 640]])
        #expect(s["up_blocks.3.upsamplers.0.conv.weight"] == nil && s["down_blocks.3.downsamplers.0.conv.weight"] == nil)
        #expect(s["down_blocks.0.attentions.1.proj_in.weight"] == [320, 320, 1, 1])
    }

    @Test("SD 2.1 config with every optional key: 865,910,724 parameters (diffusers' count)")
    func sd21Count() throws {
        let config = try UNet2DConditionConfig.decode(Data(sd21Config.utf8))
        #expect(try UNet2DConditionModel.parameterCount(config) == 865_910_724)
        let s = try config.parameterPlan().shapes
        #expect(s["down_blocks.0.attentions.0.proj_in.weight"] == [320, 320])
        #expect(s["mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"] == [1280, 1024])
    }

    @Test("model properties and the inpainting input width")
    func properties() throws {
        let (_, inpaint) = try runSD("inpaint", precision: .f32)
        #expect(inpaint.inChannels == 9 && inpaint.outChannels == 4 && inpaint.contextChannels == 32)
        #expect(inpaint.latentSizeMultiple == 2)
        let (_, sd1) = try runSD("sd1", precision: .f32)
        #expect(sd1.latentSizeMultiple == 8)
        #expect(throws: ModelError.self) { try sd1.checkLatentSize(height: 12, width: 16) }
    }

    @Test("a missing tensor is an error naming its key")
    func missingTensor() throws {
        let fx = try UNetFixture("models/unet_sd/sd2")
        let config = try UNet2DConditionConfig.decode(fx.configData)
        let victim = "down_blocks.1.attentions.0.transformer_blocks.1.ff.net.2.bias"
        let store = try fx.weights { $0.removeAll { $0.key == victim } }
        do {
            _ = try UNet2DConditionModel(config: config, weights: store.scoped(""), precision: .f32)
            Issue.record("loading succeeded without \(victim)")
        } catch {
            guard case .weights(let e) = error else { Issue.record("unexpected \(error)"); return }
            #expect(e.kind == .missingTensor)
            #expect(e.key == victim)
        }
    }

    @Test("a mis-shaped tensor is an error naming its key")
    func misShapedTensor() throws {
        let fx = try UNetFixture("models/unet_sd/inpaint")
        let config = try UNet2DConditionConfig.decode(fx.configData)
        let store = try fx.weights { list in
            if let i = list.firstIndex(where: { $0.key == "conv_in.weight" }) { list[i].shape[1] = 4 }
        }
        do {
            _ = try UNet2DConditionModel(config: config, weights: store.scoped(""), precision: .f32)
            Issue.record("loading succeeded with a 4-channel conv_in for in_channels 9")
        } catch {
            guard case .weights(let e) = error else { Issue.record("unexpected \(error)"); return }
            #expect(e.kind == .shapeMismatch)
            #expect(e.key == "conv_in.weight")
        }
    }

    @Test("unsupported features are config errors naming the key", arguments: [
        ("\"act_fn\": \"silu\"", "\"act_fn\": \"silu\", \"class_embed_type\": \"projection\"", "class_embed_type"),
        ("\"act_fn\": \"silu\"", "\"act_fn\": \"silu\", \"addition_embed_type\": \"text_time\"", "addition_embed_type"),
        ("\"act_fn\": \"silu\"", "\"act_fn\": \"silu\", \"num_attention_heads\": 8", "num_attention_heads"),
        ("\"act_fn\": \"silu\"", "\"act_fn\": \"silu\", \"only_cross_attention\": true", "only_cross_attention"),
        ("\"act_fn\": \"silu\"", "\"act_fn\": \"silu\", \"resnet_time_scale_shift\": \"scale_shift\"", "resnet_time_scale_shift"),
        ("\"act_fn\": \"silu\"", "\"act_fn\": \"silu\", \"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"", "mid_block_type"),
        ("\"act_fn\": \"silu\"", "\"act_fn\": \"gelu\"", "act_fn"),
        ("\"center_input_sample\": false", "\"center_input_sample\": true", "center_input_sample"),
        ("\"DownBlock2D\"]", "\"SimpleCrossAttnDownBlock2D\"]", "down_block_types"),
        ("\"attention_head_dim\": 8", "\"attention_head_dim\": [8, 8]", "attention_head_dim"),
        ("\"attention_head_dim\": 8", "\"attention_head_dim\": 6", "attention_head_dim"),
        ("\"mid_block_scale_factor\": 1", "\"mid_block_scale_factor\": 2", "mid_block_scale_factor"),
        ("\"cross_attention_dim\": 768", "\"cross_attention_dim\": [768, 768, 1024, 1024]", "cross_attention_dim"),
    ])
    func configErrors(_ edit: (String, String, String)) throws {
        let text = sd15Config.replacingOccurrences(of: edit.0, with: edit.1)
        #expect(text != sd15Config)
        do {
            _ = try UNet2DConditionConfig.decode(Data(text.utf8), source: "unet/config.json")
            Issue.record("accepted a config with \(edit.1)")
        } catch {
            guard case .config(let m) = error else { Issue.record("unexpected \(error)"); return }
            #expect(m.contains(edit.2), "\(m)")
            #expect(m.contains("unet/config.json"), "\(m)")
        }
    }
}

// MARK: - Opt-in full size (DECI_FULL=1)

@Suite("UNet2DConditionModel full size", .serialized, .enabled(if: FixturePaths.fullSizeEnabled))
struct UNet2DConditionFullSizeTests {
    @Test("random-weight parity at a 32x32 latent, batch 2, f32 and bf16")
    func parity() throws {
        guard let data = FullSizeData("unet_sd15") else {
            Issue.record("run `$(tools/venv.sh) tools/make_unet_fixtures.py --full` first")
            return
        }
        let (sample, t, context, want) = try data.inputs()
        for precision in [Precision.f32, .bf16] {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let model = try UNet2DConditionModel.load(directory: data.folder, precision: precision)
            let load = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            #expect(try UNet2DConditionModel.parameterCount(model.config) == 859_520_964)
            let out = model(sample, timesteps: t, context: context)
            let c = compare(out.toNCHW(), want)
            print("SD-1.5 UNet full \(precision) 32x32 batch 2: \(c); load " + String(format: "%.1f s", load))
            #expect(c.within(relative: precision == .f32 ? f32Tolerance : bf16Tolerance), "\(c)")
        }
    }

    @Test("timing: batch 2 at 32x32 and 64x64 (DECI_BENCH_PRECISIONS=f32,bf16), per-module breakdown")
    func timing() throws {
        guard let data = FullSizeData("unet_sd15") else {
            Issue.record("run `$(tools/venv.sh) tools/make_unet_fixtures.py --full` first")
            return
        }
        for precision in benchPrecisions() {
            benchmark("SD-1.5 UNet", try UNet2DConditionModel.load(directory: data.folder, precision: precision), contextChannels: 768)
        }
    }
}
