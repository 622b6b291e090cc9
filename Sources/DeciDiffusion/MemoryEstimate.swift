// A conservative estimate of the activation memory one request needs on top of the loaded weights,
// for a server to report and to schedule by. It is a formula over the request's geometry, not a
// measurement: it over-counts (every term takes the larger side of what the kernels keep alive)
// so that a job admitted by it does not run out of memory.
import DeciModels

extension DiffusionPipeline {
    /// Bytes of activation memory `request` needs at its peak, weights not included. The stages run
    /// one after another (the pipeline trims cached buffers between them), so the peak is the
    /// sampling state plus the larger of the denoiser's and the VAE's working sets:
    ///
    /// - sampling state: `(8 + 4 * cfg) * batch * latentChannels * h * w * 4` (latents, the model
    ///   input and prediction for `cfg` = 2 copies with guidance, 1 without, the guided output, the
    ///   multistep schedulers' history and the step noise), plus the text states
    ///   `4 * cfg * batch * 77 * contextChannels * 4`;
    /// - denoiser: `8 * cfg * batch * 4 * sum_k(channels_k * h * w / 4^k)` over the UNet's levels
    ///   (the skip connections of every level are alive at the bottom of the U, a few tensors per
    ///   level), plus 64 MiB for one attention tile of scores;
    /// - VAE: one image at a time, `3 * 4 * max(channels * pixels)` over the decoder's stages (an
    ///   up block's channels at its resolution and at its upsampler's doubled one; input, output and
    ///   residual alive at once) plus 64 MiB for the mid-block attention tile; with
    ///   ``GenerationRequest/vaeTiling`` on an image larger than one tile the stages are counted at
    ///   the tile size instead, plus the
    ///   decoded tiles (`2 * 3 * H * W * 4` with their overlap). The encoder (image-to-image,
    ///   inpainting) mirrors the decoder and is covered by the same term;
    /// - output: `2 * batch * 3 * H * W * 4` (the decoded floats and the [0, 1] pixels).
    ///
    /// Here `h x w` is the latent size, `H x W` the image size. Monotone in width, height and batch.
    public func memoryEstimate(for request: ResolvedRequest) -> Int {
        let f = vae.scaleFactor
        let (lh, lw) = (request.height / f, request.width / f)
        let latentPixels = lh * lw, imagePixels = request.width * request.height
        let cfg = request.doClassifierFreeGuidance ? 2 : 1
        let batch = request.batch
        let float = MemoryLayout<Float>.size
        let attentionTile = 64 << 20

        let state = (8 + 4 * cfg) * batch * vae.config.latentChannels * latentPixels * float
            + 4 * cfg * batch * tokenizer.maxLength * denoiser.contextChannels * float

        let levels = unetChannels
        var perLevel = 0
        for (k, c) in levels.enumerated() { perLevel += c * latentPixels / (1 << (2 * k)) }
        let denoiserPeak = 8 * cfg * batch * perLevel * float + attentionTile

        // The decoder at the latent size the VAE actually sees: the whole image, or one tile.
        let tile = defaultVAETiling.latentTileSize
        let tiled = request.vaeTiling && (lh > tile || lw > tile)
        let decodedLatentPixels = tiled ? tile * tile : latentPixels
        let channels = Array(vae.config.blockOutChannels.reversed())
        var largest = 0
        for (j, c) in channels.enumerated() {
            largest = max(largest, c * decodedLatentPixels << (2 * j))
            if j + 1 < channels.count { largest = max(largest, c * decodedLatentPixels << (2 * (j + 1))) }
        }
        var vaePeak = 3 * largest * float + attentionTile
        if tiled { vaePeak += 2 * 3 * imagePixels * float }

        let output = 2 * batch * 3 * imagePixels * float
        return state + max(denoiserPeak, vaePeak) + output
    }

    /// The UNet's channels per level (SD's 320, 640, 1280, 1280 when the denoiser is of a kind
    /// this does not know).
    var unetChannels: [Int] {
        switch denoiser {
        case let unet as UNet2DConditionModel: unet.config.shell.blockOutChannels
        case let nas as UNetNAS: nas.config.shell.blockOutChannels
        default: [320, 640, 1280, 1280]
        }
    }
}
