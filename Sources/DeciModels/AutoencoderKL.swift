// diffusers AutoencoderKL: matches `autoencoders/autoencoder_kl.py` (decode, encode, tiled_decode,
// _tiled_encode, blend_v/blend_h), `autoencoders/vae.py` (Encoder, Decoder,
// DiagonalGaussianDistribution) and `unets/unet_2d_blocks.py` (DownEncoderBlock2D,
// UpDecoderBlock2D, UNetMidBlock2D), diffusers 0.42. Activations are NHWC; property names are the
// checkpoint keys.
import DeciTensor
import DeciWeights
import Foundation

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
    public static func load(directory: String, precision: Precision, parts: Parts = .all,
                            variant: String? = nil) throws(ModelError) -> AutoencoderKL {
        let config = try AutoencoderKLConfig.load(URL(fileURLWithPath: directory).appendingPathComponent("config.json").path)
        let store: WeightStore
        do { store = try ComponentWeights.locate(in: directory, variant: variant).open() } catch { throw .weights(error) }
        return try AutoencoderKL(config: config, weights: store.scoped(""), precision: precision, parts: parts)
    }

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

/// diffusers `DiagonalGaussianDistribution`: the encoder's latent posterior. `logvar` is clamped
/// to [-30, 20] and `std = exp(0.5 * logvar)`, as diffusers computes them. All NHWC
/// `[n, h, w, latentChannels]`.
public struct DiagonalGaussian: Sendable {
    public let mean: Tensor
    public let logvar: Tensor
    public let std: Tensor

    /// From the quant_conv output `[n, h, w, 2 * latentChannels]`: first half mean, second half
    /// log-variance.
    public init(moments: Tensor) {
        precondition(moments.rank == 4 && moments.channels % 2 == 0, "DiagonalGaussian: moments must be NHWC with even channels, got \(moments.shape)")
        let g = Ops.diagonalGaussian(moments)
        mean = g.mean
        logvar = g.logvar
        std = g.std
    }

    /// The most likely latents (diffusers `mode()`).
    public var mode: Tensor { mean }

    /// `mean + std * noise` for standard-normal `noise` of the same NHWC shape, drawn by the caller
    /// (diffusers draws it NCHW with `randn_tensor`; convert with `Tensor.fromNCHW`).
    public func sample(noise: Tensor) -> Tensor {
        precondition(noise.shape == mean.shape, "DiagonalGaussian.sample: noise \(noise.shape) must match the latents \(mean.shape)")
        return Ops.gaussianSample(mean: mean, std: std, noise: noise)
    }
}

// MARK: - Tiling

/// Tile sizes for tiled encoding and decoding (diffusers' `enable_vae_tiling`): images are cut
/// into `sampleTileSize` squares (latents into `latentTileSize` squares) overlapping by
/// `overlapFactor`, each is run alone, and neighbours are blended linearly across the overlap.
public struct VAETiling: Sendable, Equatable {
    public var sampleTileSize: Int
    public var latentTileSize: Int
    public var overlapFactor: Double

    public init(sampleTileSize: Int, latentTileSize: Int, overlapFactor: Double = 0.25) {
        precondition(sampleTileSize >= 2 && latentTileSize >= 2, "VAETiling: tiles must be at least 2 pixels, got \(sampleTileSize) / \(latentTileSize)")
        precondition(overlapFactor >= 0 && overlapFactor < 1, "VAETiling: overlap factor \(overlapFactor) must be in [0, 1)")
        self.sampleTileSize = sampleTileSize
        self.latentTileSize = latentTileSize
        self.overlapFactor = overlapFactor
    }

    /// diffusers' values: the config's `sample_size` and that size over the downscale factor,
    /// overlap 0.25.
    public init(config: AutoencoderKLConfig) {
        self.init(sampleTileSize: config.sampleSize,
                  latentTileSize: Int(Double(config.sampleSize) / Double(config.downscaleFactor)))
    }

    // Python's int() truncation, as diffusers sizes the steps.
    var latentStep: Int { Int(Double(latentTileSize) * (1 - overlapFactor)) }
    var sampleStep: Int { Int(Double(sampleTileSize) * (1 - overlapFactor)) }
    var sampleBlendExtent: Int { Int(Double(sampleTileSize) * overlapFactor) }
    var latentBlendExtent: Int { Int(Double(latentTileSize) * overlapFactor) }
}

/// Runs a function over overlapping square crops of an NHWC tensor and stitches the results as
/// diffusers' `tiled_decode` does: tiles are visited row by row; each is blended in place with the
/// (already blended) tile above, then the one to its left, and its top-left `keep` square is kept.
/// Only the previous row of results is held.
struct Tiler {
    let crop: Int
    let step: Int
    let blendExtent: Int
    let keep: Int

    func run(_ x: Tensor, _ f: (Tensor) -> Tensor) -> Tensor {
        precondition(step >= 1, "tiling step is \(step); the tile is too small for its overlap")
        let (hgt, wid) = (x.shape[1], x.shape[2])
        var above: [Tensor] = []
        var kept: [[Tensor]] = []
        for y0 in stride(from: 0, to: hgt, by: step) {
            var row: [Tensor] = []
            for x0 in stride(from: 0, to: wid, by: step) {
                let tile = f(Ops.crop(x, y: y0, x: x0, height: min(crop, hgt - y0), width: min(crop, wid - x0)))
                if !above.isEmpty { Ops.blendVertical(top: above[row.count], into: tile, extent: blendExtent) }
                if let left = row.last { Ops.blendHorizontal(left: left, into: tile, extent: blendExtent) }
                row.append(tile)
            }
            kept.append(row.map { Ops.crop($0, y: 0, x: 0, height: min(keep, $0.shape[1]), width: min(keep, $0.shape[2])) })
            above = row
        }
        return Ops.assemble(kept)
    }
}

// MARK: - Modules

/// diffusers VAE `Encoder`: conv_in, DownEncoderBlock2Ds, mid block, GroupNorm + SiLU, conv_out to
/// 2 * latentChannels (mean and log-variance).
final class VAEEncoder: @unchecked Sendable {
    let conv_in: Conv2d
    let down_blocks: [DownEncoderBlock2D]
    let mid_block: VAEMidBlock
    let conv_norm_out: GroupNorm
    let conv_out: Conv2d

    init(_ w: WeightScope, config c: AutoencoderKLConfig, precision: Precision) throws(ModelError) {
        let ch = c.blockOutChannels, g = c.normNumGroups
        conv_in = try w.conv("conv_in", in: c.inChannels, out: ch[0], kernel: 3, precision: precision)
        var blocks: [DownEncoderBlock2D] = []
        var cin = ch[0]
        for (i, cout) in ch.enumerated() {
            blocks.append(try DownEncoderBlock2D(w.scoped("down_blocks.\(i)."), in: cin, out: cout, layers: c.layersPerBlock, groups: g,
                                                 downsample: i != ch.count - 1, precision: precision))
            cin = cout
        }
        down_blocks = blocks
        mid_block = try VAEMidBlock(w.scoped("mid_block."), channels: cin, groups: g, attention: c.midBlockAddAttention, precision: precision)
        conv_norm_out = try w.groupNorm("conv_norm_out", groups: g, channels: cin, eps: 1e-6)
        conv_out = try w.conv("conv_out", in: cin, out: 2 * c.latentChannels, kernel: 3, precision: precision)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv_in(x)
        for block in down_blocks { h = block(consume h) }
        h = mid_block(consume h)
        return conv_out(conv_norm_out(h, silu: true))
    }
}

/// diffusers VAE `Decoder`: conv_in, mid block, UpDecoderBlock2Ds (block_out_channels reversed),
/// GroupNorm + SiLU, conv_out.
final class VAEDecoder: @unchecked Sendable {
    let conv_in: Conv2d
    let mid_block: VAEMidBlock
    let up_blocks: [UpDecoderBlock2D]
    let conv_norm_out: GroupNorm
    let conv_out: Conv2d

    init(_ w: WeightScope, config c: AutoencoderKLConfig, precision: Precision) throws(ModelError) {
        let ch = Array(c.blockOutChannels.reversed()), g = c.normNumGroups
        conv_in = try w.conv("conv_in", in: c.latentChannels, out: ch[0], kernel: 3, precision: precision)
        mid_block = try VAEMidBlock(w.scoped("mid_block."), channels: ch[0], groups: g, attention: c.midBlockAddAttention, precision: precision)
        var blocks: [UpDecoderBlock2D] = []
        var cin = ch[0]
        for (i, cout) in ch.enumerated() {
            blocks.append(try UpDecoderBlock2D(w.scoped("up_blocks.\(i)."), in: cin, out: cout, layers: c.layersPerBlock + 1, groups: g,
                                               upsample: i != ch.count - 1, precision: precision))
            cin = cout
        }
        up_blocks = blocks
        conv_norm_out = try w.groupNorm("conv_norm_out", groups: g, channels: cin, eps: 1e-6)
        conv_out = try w.conv("conv_out", in: cin, out: c.outChannels, kernel: 3, precision: precision)
    }

    func callAsFunction(_ z: Tensor) -> Tensor {
        var h = mid_block(conv_in(z))
        for block in up_blocks { h = block(consume h) }
        return conv_out(conv_norm_out(h, silu: true))
    }
}

/// Maps of at least this many values (32 MiB in float32) get the memory care below.
private let largeMap = 1 << 23

/// Returns the op layer's cached activation buffers to the system before a block works on a large
/// map. The cache reuses buffers of exactly equal size, which suits the denoising loop; in the VAE
/// each block works at new sizes, so without this the buffers of all earlier blocks stay resident.
/// Measured on a 512 px f32 decode (weights included): 1.50 GiB peak RSS without any release,
/// 1.14 GiB with this one, about 0.9 GiB with ``ResnetBlock2D/widening(_:)`` as well.
private func releaseCachedBuffers(ifLarge x: Tensor) {
    if x.count >= largeMap { Backend.trimMemory() }
}

extension ResnetBlock2D {
    /// The forward pass without time embedding, for a resnet that changes the width (the first
    /// of a VAE block): the same arithmetic as `callAsFunction`, but on a large map the
    /// input-sized buffers (the input and its normalised copy) go back to the system as soon as
    /// they are dead, since no later layer can reuse a buffer of their size.
    func widening(_ x: consuming Tensor) -> Tensor {
        precondition(time_emb_proj == nil, "widening(_:) is for resnets without time embedding")
        let large = x.count >= largeMap
        var h = conv1(norm1(x, silu: true))
        if large { Backend.trimMemory() }
        h = norm2(h, silu: true)
        let shortcut = conv_shortcut.map { $0(x) } ?? copy x
        _ = consume x
        if large { Backend.trimMemory() }
        return conv2(h, residual: shortcut)
    }
}

/// The resnets of a VAE encoder or decoder block: no time embedding, the first one widening `cin`
/// to `cout`.
private func vaeBlockResnets(_ w: WeightScope, in cin: Int, out cout: Int, layers: Int, groups: Int,
                             precision: Precision) throws(ModelError) -> [ResnetBlock2D] {
    var r: [ResnetBlock2D] = []
    for j in 0..<layers {
        r.append(try ResnetBlock2D(w.scoped("resnets.\(j)."), in: j == 0 ? cin : cout, out: cout, tembChannels: nil, groups: groups,
                                   eps: 1e-6, precision: precision))
    }
    return r
}

private func runVAEBlockResnets(_ resnets: [ResnetBlock2D], widens: Bool, _ x: consuming Tensor) -> Tensor {
    releaseCachedBuffers(ifLarge: x)
    var h = consume x
    for (j, r) in resnets.enumerated() {
        h = j == 0 && widens ? r.widening(consume h) : r(h)
    }
    return h
}

/// diffusers `DownEncoderBlock2D`: resnets without time embedding, then a stride-2 conv that pads
/// only bottom and right (except in the last block).
final class DownEncoderBlock2D: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    let downsampler: Downsample2D?
    let widens: Bool

    init(_ w: WeightScope, in cin: Int, out cout: Int, layers: Int, groups: Int, downsample: Bool, precision: Precision) throws(ModelError) {
        resnets = try vaeBlockResnets(w, in: cin, out: cout, layers: layers, groups: groups, precision: precision)
        widens = cin != cout
        downsampler = downsample ? try Downsample2D(w.scoped("downsamplers.0."), channels: cout, vaeStylePadding: true, precision: precision) : nil
    }

    func callAsFunction(_ x: consuming Tensor) -> Tensor {
        let h = runVAEBlockResnets(resnets, widens: widens, consume x)
        guard let downsampler else { return h }
        releaseCachedBuffers(ifLarge: h)
        return downsampler(h)
    }
}

/// diffusers `UpDecoderBlock2D`: resnets without time embedding, then nearest 2x + conv (except in
/// the last block).
final class UpDecoderBlock2D: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    let upsampler: Upsample2D?
    let widens: Bool

    init(_ w: WeightScope, in cin: Int, out cout: Int, layers: Int, groups: Int, upsample: Bool, precision: Precision) throws(ModelError) {
        resnets = try vaeBlockResnets(w, in: cin, out: cout, layers: layers, groups: groups, precision: precision)
        widens = cin != cout
        upsampler = upsample ? try Upsample2D(w.scoped("upsamplers.0."), channels: cout, precision: precision) : nil
    }

    func callAsFunction(_ x: consuming Tensor) -> Tensor {
        let h = runVAEBlockResnets(resnets, widens: widens, consume x)
        guard let upsampler else { return h }
        releaseCachedBuffers(ifLarge: h)
        return upsampler(h)
    }
}

/// diffusers `UNetMidBlock2D` as the VAE builds it: resnet, (attention), resnet.
final class VAEMidBlock: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    let attention: VAEAttentionBlock?

    init(_ w: WeightScope, channels c: Int, groups: Int, attention addAttention: Bool, precision: Precision) throws(ModelError) {
        resnets = try [0, 1].map { (j: Int) throws(ModelError) in
            try ResnetBlock2D(w.scoped("resnets.\(j)."), in: c, out: c, tembChannels: nil, groups: groups, eps: 1e-6, precision: precision)
        }
        attention = addAttention ? try VAEAttentionBlock(w.scoped("attentions.0."), channels: c, groups: groups, precision: precision) : nil
    }

    func callAsFunction(_ x: consuming Tensor) -> Tensor {
        var h = resnets[0](x)
        _ = consume x
        if let attention { h = attention(h) }
        return resnets[1](h)
    }
}

/// The VAE's spatial self-attention (diffusers `Attention` with `_from_deprecated_attn_block`):
/// GroupNorm (eps 1e-6), one head over all pixels with q/k/v biases, output projection, plus the
/// input. NHWC rows are already the `[n, h*w, c]` sequence.
final class VAEAttentionBlock: @unchecked Sendable {
    let group_norm: GroupNorm
    let attention: Attention

    init(_ w: WeightScope, channels c: Int, groups: Int, precision: Precision) throws(ModelError) {
        group_norm = try w.groupNorm("group_norm", groups: groups, channels: c, eps: 1e-6)
        attention = try Attention(w, channels: c, heads: 1, contextChannels: nil, qkvBias: true, precision: precision)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let (n, h, wd, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        return attention(group_norm(x).reshaped([n, h * wd, c]), residual: x).reshaped(x.shape)
    }
}
