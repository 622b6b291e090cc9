// The `vae/config.json` of a diffusers AutoencoderKL (matches diffusers `AutoencoderKL.__init__`
// arguments and defaults, diffusers 0.42).
import Foundation

/// Settings of a diffusers `AutoencoderKL`, decoded from its `config.json`.
///
/// Missing keys take diffusers' defaults; unknown keys are ignored; `null` counts as missing.
/// Values the engine cannot run (other block types, other activations) are rejected by
/// ``validate()`` with an error naming the key and value.
public struct AutoencoderKLConfig: Codable, Sendable, Equatable {
    public var inChannels = 3
    public var outChannels = 3
    public var downBlockTypes = ["DownEncoderBlock2D"]
    public var upBlockTypes = ["UpDecoderBlock2D"]
    public var blockOutChannels = [64]
    public var layersPerBlock = 1
    public var actFn = "silu"
    public var latentChannels = 4
    public var normNumGroups = 32
    /// Image side the VAE was trained at; the tile size of tiled decoding. A `[h, w]` list in the
    /// file is read as its first entry, as diffusers does for the latent tile.
    public var sampleSize = 32
    /// Latents given to the denoiser are `(z - shiftFactor) * scalingFactor`.
    public var scalingFactor: Double = 0.18215
    public var shiftFactor: Double?
    /// Per-channel latent statistics some newer VAEs carry (SDXL-style pipelines use them); kept
    /// for the pipeline, unused by the Stable Diffusion pipeline.
    public var latentsMean: [Double]?
    public var latentsStd: [Double]?
    /// The checkpoint asks to be run in float32 even when the rest of the pipeline is not.
    public var forceUpcast = true
    public var useQuantConv = true
    public var usePostQuantConv = true
    public var midBlockAddAttention = true

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block", actFn = "act_fn"
        case latentChannels = "latent_channels", normNumGroups = "norm_num_groups", sampleSize = "sample_size"
        case scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case latentsMean = "latents_mean", latentsStd = "latents_std", forceUpcast = "force_upcast"
        case useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
    }

    /// The defaults of diffusers' `AutoencoderKL()`.
    public init() {}

    /// The Stable Diffusion 1.x VAE (DeciDiffusion's `vae/`): 83,653,863 parameters.
    public static var stableDiffusion: AutoencoderKLConfig {
        var c = AutoencoderKLConfig()
        c.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: 4)
        c.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: 4)
        c.blockOutChannels = [128, 256, 512, 512]
        c.layersPerBlock = 2
        c.sampleSize = 512
        return c
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var s = AutoencoderKLConfig()
        func read<T: Decodable>(_ key: CodingKeys, into value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        try read(.inChannels, into: &s.inChannels)
        try read(.outChannels, into: &s.outChannels)
        try read(.downBlockTypes, into: &s.downBlockTypes)
        try read(.upBlockTypes, into: &s.upBlockTypes)
        try read(.blockOutChannels, into: &s.blockOutChannels)
        try read(.layersPerBlock, into: &s.layersPerBlock)
        try read(.actFn, into: &s.actFn)
        try read(.latentChannels, into: &s.latentChannels)
        try read(.normNumGroups, into: &s.normNumGroups)
        if let side = try? c.decodeIfPresent(Int.self, forKey: .sampleSize) {
            s.sampleSize = side
        } else if let sides = try c.decodeIfPresent([Int].self, forKey: .sampleSize), let first = sides.first {
            s.sampleSize = first
        }
        try read(.scalingFactor, into: &s.scalingFactor)
        s.shiftFactor = try c.decodeIfPresent(Double.self, forKey: .shiftFactor)
        s.latentsMean = try c.decodeIfPresent([Double].self, forKey: .latentsMean)
        s.latentsStd = try c.decodeIfPresent([Double].self, forKey: .latentsStd)
        try read(.forceUpcast, into: &s.forceUpcast)
        try read(.useQuantConv, into: &s.useQuantConv)
        try read(.usePostQuantConv, into: &s.usePostQuantConv)
        try read(.midBlockAddAttention, into: &s.midBlockAddAttention)
        self = s
    }

    /// Reads and validates the `config.json` at `url`; errors name its path.
    public static func load(contentsOf url: URL) throws(ModelError) -> AutoencoderKLConfig {
        let path = url.path
        let data = try readConfigFile(url)
        let config: AutoencoderKLConfig
        do { config = try JSONDecoder().decode(AutoencoderKLConfig.self, from: data) } catch {
            throw .config("\(path): not a valid AutoencoderKL config: \(describe(error))")
        }
        do { try config.validate() } catch {
            if case .config(let m) = error { throw .config("\(path): \(m)") }
            throw error
        }
        return config
    }

    /// Checks that the engine can build this VAE; the error names the offending key and value.
    public func validate() throws(ModelError) {
        func fail(_ m: String) -> ModelError { .config(m) }
        guard !blockOutChannels.isEmpty else { throw fail("block_out_channels is empty") }
        if let bad = blockOutChannels.first(where: { $0 <= 0 }) { throw fail("block_out_channels has \(bad); widths must be positive") }
        guard downBlockTypes.count == blockOutChannels.count else {
            throw fail("down_block_types has \(downBlockTypes.count) entries but block_out_channels has \(blockOutChannels.count)")
        }
        guard upBlockTypes.count == blockOutChannels.count else {
            throw fail("up_block_types has \(upBlockTypes.count) entries but block_out_channels has \(blockOutChannels.count)")
        }
        if let bad = downBlockTypes.first(where: { $0 != "DownEncoderBlock2D" }) {
            throw fail("down_block_types contains \"\(bad)\"; only DownEncoderBlock2D is supported (Stable Diffusion VAEs use no other)")
        }
        if let bad = upBlockTypes.first(where: { $0 != "UpDecoderBlock2D" }) {
            throw fail("up_block_types contains \"\(bad)\"; only UpDecoderBlock2D is supported (Stable Diffusion VAEs use no other)")
        }
        guard actFn == "silu" || actFn == "swish" else { throw fail("act_fn \"\(actFn)\" is not supported; only silu (swish)") }
        guard layersPerBlock >= 1 else { throw fail("layers_per_block \(layersPerBlock) must be at least 1") }
        guard inChannels > 0, outChannels > 0, latentChannels > 0 else {
            throw fail("in_channels \(inChannels), out_channels \(outChannels), latent_channels \(latentChannels) must be positive")
        }
        guard normNumGroups > 0 else { throw fail("norm_num_groups \(normNumGroups) must be positive") }
        if let bad = blockOutChannels.first(where: { $0 % normNumGroups != 0 }) {
            throw fail("block_out_channels entry \(bad) is not divisible by norm_num_groups \(normNumGroups)")
        }
        guard scalingFactor.isFinite, scalingFactor != 0 else { throw fail("scaling_factor \(scalingFactor) must be finite and non-zero") }
        if let s = shiftFactor, !s.isFinite { throw fail("shift_factor \(s) must be finite") }
        guard sampleSize > 0 else { throw fail("sample_size \(sampleSize) must be positive") }
    }

    /// Image pixels per latent pixel along each side: 2^(blocks - 1) (8 for Stable Diffusion).
    public var downscaleFactor: Int { 1 << (blockOutChannels.count - 1) }

    /// Every tensor a complete checkpoint of this configuration holds, with its PyTorch shape, in
    /// current diffusers naming, in the order the model asks for them: the model built over a
    /// recording store (no weights read or allocated).
    public func parameterPlan() throws(ModelError) -> ParameterPlan {
        try ParameterPlan.recording { (w) throws(ModelError) in _ = try AutoencoderKL(config: self, weights: w, precision: .f32) }
    }

    /// ``parameterPlan()`` as keys mapped to shapes. Lets a caller check a file before loading it.
    public func checkpointShapes() throws(ModelError) -> [String: [Int]] { try parameterPlan().shapes }

    /// Parameters of a complete checkpoint (83,653,863 for Stable Diffusion's VAE).
    public var parameterCount: Int {
        get throws(ModelError) { try parameterPlan().parameterCount }
    }
}

private func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx),
         DecodingError.keyNotFound(_, let ctx), DecodingError.dataCorrupted(let ctx):
        let path = ctx.codingPath.map(\.stringValue).joined(separator: ".")
        return path.isEmpty ? ctx.debugDescription : "\(path): \(ctx.debugDescription)"
    default:
        return "\(error)"
    }
}
