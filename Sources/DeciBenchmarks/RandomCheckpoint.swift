import DeciModels
import DeciWeights
import Foundation

/// Writes a full-size checkpoint folder with random fp16 weights in the official diffusers layout
/// (DeciDiffusion or SD 1.5 shaped) from the configs in the spec folder, so speed and memory can be
/// measured without downloading anything: timing does not depend on weight values.
public enum RandomCheckpoint {
    public enum Kind: String, Sendable, CaseIterable {
        case deciDiffusion = "decidiffusion"
        case sd15 = "sd15"
    }

    /// The folder, written on first use under `cacheRoot` (default `~/.cache/decidiffusion/random`).
    public static func folder(_ kind: Kind, specFolder: URL, tokenizerFolder: URL, cacheRoot: URL? = nil,
                              log: (String) -> Void = { _ in }) throws -> URL {
        let root = (cacheRoot ?? URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".cache/decidiffusion/random"))
            .appendingPathComponent(kind.rawValue)
        let done = root.appendingPathComponent(".complete")
        if FileManager.default.fileExists(atPath: done.path) { return root }
        try? FileManager.default.removeItem(at: root)
        let fm = FileManager.default
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        func write(_ json: String, _ path: String) throws {
            let url = root.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(json.utf8).write(to: url)
        }
        // Tokenizer: the real CLIP vocabulary.
        try fm.createDirectory(at: root.appendingPathComponent("tokenizer"), withIntermediateDirectories: true)
        for f in try fm.contentsOfDirectory(atPath: tokenizerFolder.path) where f.hasSuffix(".json") || f.hasSuffix(".txt") {
            try fm.copyItem(at: tokenizerFolder.appendingPathComponent(f), to: root.appendingPathComponent("tokenizer/\(f)"))
        }
        try write(clipConfigJSON, "text_encoder/config.json")
        try writeWeights(try clipPlan(), to: root.appendingPathComponent("text_encoder/model.safetensors"), log: log)
        try write(vaeConfigJSON, "vae/config.json")
        try writeWeights(try vaePlan(AutoencoderKLConfig.stableDiffusion),
                         to: root.appendingPathComponent("vae/diffusion_pytorch_model.safetensors"), log: log)
        switch kind {
        case .deciDiffusion:
            try write(#"{"_class_name": "DeciDiffusionPipeline", "_diffusers_version": "0.20.2", "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}"#,
                      "model_index.json")
            try fm.createDirectory(at: root.appendingPathComponent("scheduler"), withIntermediateDirectories: true)
            try fm.copyItem(at: specFolder.appendingPathComponent("scheduler_config.json"),
                            to: root.appendingPathComponent("scheduler/scheduler_config.json"))
            let cfgURL = specFolder.appendingPathComponent("flexible_unet.config.json")
            try fm.createDirectory(at: root.appendingPathComponent("flexible_unet"), withIntermediateDirectories: true)
            try fm.copyItem(at: cfgURL, to: root.appendingPathComponent("flexible_unet/config.json"))
            let plan = try UNetNASConfig.load(contentsOf: cfgURL).parameterPlan()
            try writeWeights(plan.entries, to: root.appendingPathComponent("flexible_unet/diffusion_pytorch_model.safetensors"), log: log)
        case .sd15:
            try write(#"{"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1", "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}"#,
                      "model_index.json")
            try write(#"{"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null, "clip_sample": false}"#,
                      "scheduler/scheduler_config.json")
            let cfgURL = specFolder.appendingPathComponent("sd15_unet.config.json")
            try fm.createDirectory(at: root.appendingPathComponent("unet"), withIntermediateDirectories: true)
            try fm.copyItem(at: cfgURL, to: root.appendingPathComponent("unet/config.json"))
            let plan = try UNet2DConditionConfig.load(contentsOf: cfgURL).parameterPlan()
            try writeWeights(plan.entries, to: root.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"), log: log)
        }
        try Data().write(to: done)
        return root
    }

    static let clipConfigJSON = #"{"architectures": ["CLIPTextModel"], "hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 12, "num_hidden_layers": 12, "projection_dim": 768, "vocab_size": 49408, "torch_dtype": "float16"}"#

    static let vaeConfigJSON = #"{"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"], "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 512, "scaling_factor": 0.18215, "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}"#

    /// CLIP ViT-L/14 text tower keys (transformers' names, under `text_model.`), 123,060,480
    /// parameters: the model's own plan for ``clipConfigJSON``, in the order it asks for them.
    static func clipPlan() throws(ModelError) -> [(key: String, shape: [Int])] {
        try CLIPTextConfig.decode(Data(clipConfigJSON.utf8)).parameterPlan().entries.map { (key: "text_model." + $0.key, shape: $0.shape) }
    }

    /// AutoencoderKL keys for a config: the model's own list of a complete checkpoint, in key order
    /// so the random values are deterministic.
    static func vaePlan(_ c: AutoencoderKLConfig) throws(ModelError) -> [(key: String, shape: [Int])] {
        try c.parameterPlan().entries.sorted { $0.key < $1.key }
    }

    /// Random fp16 weights: uniform in ±1/sqrt(fan_in) for matrices (activations stay O(1)),
    /// 1 for norm scales, small for biases. Deterministic.
    static func writeWeights(_ plan: [(key: String, shape: [Int])], to url: URL, log: (String) -> Void) throws {
        log("writing random weights: \(url.path)")
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for (key, shape) in plan {
            let n = shape.reduce(1, *)
            let isNormScale = shape.count == 1 && key.hasSuffix(".weight")
            let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
            let scale: Float = shape.count > 1 ? 1 / Float(fanIn).squareRoot() : 0.02
            var bytes = [UInt8](repeating: 0, count: n * 2)
            bytes.withUnsafeMutableBytes { raw in
                let p = raw.bindMemory(to: UInt16.self)
                for i in 0..<n {
                    state ^= state << 13; state ^= state >> 7; state ^= state << 17
                    let u = Float(state >> 40) / Float(1 << 24) * 2 - 1
                    let v: Float = isNormScale ? 1 : u * scale
                    p[i] = Float16(v).bitPattern
                }
            }
            try writer.add(key, dtype: .F16, shape: shape, bytes: bytes)
        }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try writer.write(to: url.path)
    }
}
