// diffusers AutoencoderKL (`autoencoders/autoencoder_kl.py`: decode, encode, and the scaling the
// pipelines apply around them), diffusers 0.42. Activations are NHWC; property names are the
// checkpoint keys.
import DeciTensor
import DeciWeights

/// The Stable Diffusion VAE: an encoder from images to a diagonal Gaussian over latents and a
/// decoder from latents back to images.
///
/// Images are NHWC `[n, h, w, 3]` with values nominally in [-1, 1]; latents are NHWC
/// `[n, h / f, w / f, latentChannels]` with `f` = ``AutoencoderKLConfig/downscaleFactor`` (8).
/// ``decode(_:tiling:)`` and ``encode(_:tiling:)`` are the module's own forward passes, as
/// diffusers' `vae.decode` / `vae.encode`; ``decodeLatents(_:tiling:sliced:)`` and
/// ``encodeLatents(_:noise:tiling:)`` add the scaling the pipelines apply around them.
///
/// Immutable after loading, so one instance may serve several threads.
public final class AutoencoderKL: @unchecked Sendable {
    /// Which halves to load. A text-to-image pipeline needs only the decoder (about 60% of the
    /// weights); the skipped half's tensors are accepted as unused.
    public struct Parts: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let encoder = Parts(rawValue: 1)
        public static let decoder = Parts(rawValue: 2)
        public static let all: Parts = [.encoder, .decoder]
    }

    public let config: AutoencoderKLConfig
    public let precision: Precision
    public let parts: Parts
    let encoder: VAEEncoder?
    let quant_conv: Conv2d?
    let decoder: VAEDecoder?
    let post_quant_conv: Conv2d?

    /// Builds the VAE from checkpoint tensors under `weights` (diffusers names; the pre-0.14
    /// attention names `query`/`key`/`value`/`proj_attn` and 1x1-conv-shaped attention weights are
    /// accepted too), then fails if the scope holds tensors the model did not use.
    public init(config: AutoencoderKLConfig, weights: WeightScope, precision: Precision, parts: Parts = .all) throws(ModelError) {
        try config.validate()
        guard !parts.isEmpty else { throw .config("AutoencoderKL: no parts requested (parts is empty)") }
        self.config = config
        self.precision = precision
        self.parts = parts
        let w = weights.scoped("", renames: KeyRename.vaeLegacyAttention)
        let l2 = 2 * config.latentChannels
        if parts.contains(.encoder) {
            encoder = try VAEEncoder(w.scoped("encoder."), config: config, precision: precision)
            quant_conv = config.useQuantConv ? try w.conv("quant_conv", in: l2, out: l2, kernel: 1, precision: precision) : nil
        } else {
            encoder = nil
            quant_conv = nil
            AutoencoderKL.skip(["encoder.", "quant_conv."], in: w)
        }
        if parts.contains(.decoder) {
            let l = config.latentChannels
            post_quant_conv = config.usePostQuantConv ? try w.conv("post_quant_conv", in: l, out: l, kernel: 1, precision: precision) : nil
            decoder = try VAEDecoder(w.scoped("decoder."), config: config, precision: precision)
        } else {
            decoder = nil
            post_quant_conv = nil
            AutoencoderKL.skip(["decoder.", "post_quant_conv."], in: w)
        }
        do { try w.finish() } catch { throw .weights(error) }
    }

    /// Loads a diffusers `vae/` folder: `config.json` plus the weights `ComponentWeights` finds
    /// there (`diffusion_pytorch_model[.variant].safetensors` or a shard index).
    public static func load(directory: String, precision: Precision, variant: String? = nil,
                            parts: Parts = .all) throws(ModelError) -> AutoencoderKL {
        try loadComponent(directory: directory, variant: variant, config: AutoencoderKLConfig.load(contentsOf:)) { (config, store) throws(ModelError) in
            try AutoencoderKL(config: config, weights: store.scoped(""), precision: precision, parts: parts)
        }
    }

    /// Pixels per latent along each side: 2 per downsampling block.
    public var scaleFactor: Int { 1 << (config.blockOutChannels.count - 1) }

    private static func skip(_ prefixes: [String], in w: WeightScope) {
        let full = prefixes.map { w.prefix + $0 }
        w.store.markConsumed(w.store.keys.filter { k in full.contains { k.hasPrefix($0) } })
    }

    // MARK: Decoding

    /// diffusers `vae.decode(z)`: post_quant_conv, then the decoder. `z` is NHWC
    /// `[n, h, w, latentChannels]`, already divided by the scaling factor; returns `[n, h*f, w*f, outChannels]`.
    /// With `tiling`, latents larger than its tile are decoded tile by tile as diffusers'
    /// `tiled_decode` does (bounded memory, slightly different result near tile seams).
    public func decode(_ z: Tensor, tiling: VAETiling? = nil) -> Tensor {
        guard let decoder else { preconditionFailure("AutoencoderKL.decode: this instance was loaded without the decoder") }
        precondition(z.rank == 4 && z.shape[3] == config.latentChannels,
                     "AutoencoderKL.decode: latents must be NHWC [n, h, w, \(config.latentChannels)], got \(z.shape)")
        let run: (Tensor) -> Tensor = { [post_quant_conv] tile in decoder(post_quant_conv?(tile) ?? tile) }
        if let tiling, z.shape[1] > tiling.latentTileSize || z.shape[2] > tiling.latentTileSize {
            return Tiler(crop: tiling.latentTileSize, step: tiling.latentStep, blendExtent: tiling.sampleBlendExtent,
                         keep: tiling.sampleTileSize - tiling.sampleBlendExtent).run(z, run)
        }
        return run(z)
    }

    /// What a pipeline does with the denoised latents: `decode(latents / scaling_factor + shift_factor)`
    /// (no shift when the config has none, as in Stable Diffusion). Returns NHWC images, nominally
    /// in [-1, 1] and not clamped (the image post-processor maps `x / 2 + 0.5` to [0, 1] and clamps).
    /// `sliced` decodes one image at a time (diffusers' `enable_vae_slicing`; same values, the peak
    /// memory of a single image).
    public func decodeLatents(_ latents: Tensor, tiling: VAETiling? = nil, sliced: Bool = true) -> Tensor {
        precondition(latents.rank == 4, "AutoencoderKL.decodeLatents: latents must be NHWC, got \(latents.shape)")
        let z = Ops.affine(latents, dividedBy: Float(config.scalingFactor), adding: Float(config.shiftFactor ?? 0))
        guard sliced, z.shape[0] > 1 else { return decode(z, tiling: tiling) }
        return perImage(z) { decode($0, tiling: tiling) }
    }

    // MARK: Encoding

    /// diffusers `vae.encode(x).latent_dist`: the encoder, quant_conv, and the Gaussian they
    /// parameterise. `images` NHWC `[n, h, w, inChannels]` in [-1, 1]. With `tiling`, images larger
    /// than its tile are encoded as diffusers' `_tiled_encode` does.
    public func encode(_ images: Tensor, tiling: VAETiling? = nil) -> DiagonalGaussian {
        guard let encoder else { preconditionFailure("AutoencoderKL.encode: this instance was loaded without the encoder") }
        precondition(images.rank == 4 && images.shape[3] == config.inChannels,
                     "AutoencoderKL.encode: images must be NHWC [n, h, w, \(config.inChannels)], got \(images.shape)")
        let run: (Tensor) -> Tensor = { [quant_conv] tile in
            let h = encoder(tile)
            return quant_conv?(h) ?? h
        }
        if let tiling, images.shape[1] > tiling.sampleTileSize || images.shape[2] > tiling.sampleTileSize {
            let moments = Tiler(crop: tiling.sampleTileSize, step: tiling.sampleStep, blendExtent: tiling.latentBlendExtent,
                                keep: tiling.latentTileSize - tiling.latentBlendExtent).run(images, run)
            return DiagonalGaussian(moments: moments)
        }
        return DiagonalGaussian(moments: run(images))
    }

    /// Latents for the denoiser from images (image-to-image): a sample of the posterior with the
    /// caller's standard-normal `noise` (NHWC, the latents' shape), or its mode when `noise` is nil,
    /// then `(z - shift_factor) * scaling_factor`.
    public func encodeLatents(_ images: Tensor, noise: Tensor? = nil, tiling: VAETiling? = nil) -> Tensor {
        let dist = encode(images, tiling: tiling)
        let z = noise.map { dist.sample(noise: $0) } ?? dist.mode
        return Ops.affine(z, subtracting: Float(config.shiftFactor ?? 0), multipliedBy: Float(config.scalingFactor))
    }

    // MARK: Helpers

    private func perImage(_ x: Tensor, _ f: (Tensor) -> Tensor) -> Tensor {
        Ops.concatBatch((0..<x.shape[0]).map { f(Ops.gatherBatch(x, [$0])) })
    }
}
