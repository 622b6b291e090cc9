// Inpainting as diffusers 0.42's StableDiffusionInpaintPipeline does it, for both kinds of UNet:
// - 9-channel inpainting UNets read [latents, mask, masked-image latents] stacked on channels;
// - regular 4-channel UNets run the ordinary loop, and after every step the kept region is reset to
//   the init image's latents noised to the next timestep (latent blending).
import DeciImage
import DeciRandom
import DeciSchedulers
import DeciTensor

/// What the denoising loop needs for inpainting besides the latents. Arrays are NCHW-ordered.
struct InpaintingConditioning: Sendable {
    /// The mask at latent size (1 = repaint), one copy per image: `[B, 1, h, w]`.
    var mask: [Float]
    /// Latents of the init image with the repainted region zeroed, one copy per image: `[B, C, h, w]`.
    var maskedImageLatents: [Float]
    /// Latents of the init image and the initial noise, `[B, C, h, w]` each: what the kept region
    /// is reset to (4-channel models only).
    var imageLatents: [Float]?
    var noise: [Float]
    /// True for 9-channel inpainting UNets (mask and masked-image latents as extra input channels),
    /// false for latent blending.
    var concatenatesChannels: Bool
    var latentChannels: Int
    var latentPixels: Int  // h * w

    /// The UNet input for one step: per image, the scaled latents, the mask and the masked-image
    /// latents, for each of the `copies` halves of a guidance batch.
    func modelInput(scaled: [Float], copies: Int) -> [Float] {
        let per = latentChannels * latentPixels
        let batch = mask.count / latentPixels
        var out: [Float] = []
        out.reserveCapacity(scaled.count + copies * (mask.count + maskedImageLatents.count))
        for n in 0..<(copies * batch) {
            let b = n % batch
            out += scaled[(n * per)..<((n + 1) * per)]
            out += mask[(b * latentPixels)..<((b + 1) * latentPixels)]
            out += maskedImageLatents[(b * per)..<((b + 1) * per)]
        }
        return out
    }

    /// After a step: `(1 - mask) * init + mask * latents`, where `init` is the init image's latents
    /// noised to the next timestep (the clean latents after the last step), as diffusers does.
    func blend(_ latents: [Float], nextTimestep: Float?, scheduler: any Scheduler) throws -> [Float] {
        guard let imageLatents else { return latents }
        let proper = try nextTimestep.map { try scheduler.addNoise(original: imageLatents, noise: noise, timestep: $0) } ?? imageLatents
        let per = latentChannels * latentPixels
        var out = latents
        for i in 0..<out.count {
            let m = mask[(i / per) * latentPixels + i % latentPixels]
            out[i] = (1 - m) * proper[i] + m * latents[i]
        }
        return out
    }
}

extension DiffusionPipeline {
    /// Initial latents and conditioning for inpainting, drawing from `rng` in diffusers' order:
    /// 1. the init image's VAE sample (only when the UNet has 4 channels or `strength < 1`),
    /// 2. the initial noise `[B, C, h, w]`,
    /// 3. the masked image's VAE sample (drawn for 4-channel UNets too, which never use it).
    /// At strength 1 the latents are pure noise times `init_noise_sigma`; below, the init latents
    /// noised to the first timestep.
    func prepareInpainting(_ req: ResolvedRequest, timesteps: [Float], scheduler: any Scheduler,
                           rng: inout TorchRandomSource) throws -> LatentStart {
        guard let maskImage = req.mask else { throw RequestError("mask: missing") }
        let shape = latentShape(req)
        let blending = !isInpaintingModel
        let strengthIsMax = req.strength == 1
        let pixels = try vaeInput(req)

        var imageLatents: [Float]?
        if blending || !strengthIsMax {
            imageLatents = repeated(encodeImage(pixels, width: req.width, height: req.height, req: req, rng: &rng), times: shape.batch)
        }
        let noise = rng.normal(count: shape.count)
        let latents: [Float]
        if strengthIsMax {
            let sigma = scheduler.initNoiseSigma
            latents = noise.map { $0 * sigma }
        } else {
            latents = try scheduler.addNoise(original: imageLatents ?? [], noise: noise, timestep: timesteps[0])
        }

        let mask = try maskImage.preprocessedMask(width: req.width, height: req.height, scaleFactor: vae.scaleFactor).values
        let masked = maskedImage(pixels, mask: mask)
        let maskedLatents = encodeImage(masked, width: req.width, height: req.height, req: req, rng: &rng)
        let latentMask = nearestDownsample(mask, width: req.width, height: req.height, factor: vae.scaleFactor)
        let conditioning = InpaintingConditioning(
            mask: repeated(latentMask, times: shape.batch), maskedImageLatents: repeated(maskedLatents, times: shape.batch),
            imageLatents: blending ? imageLatents : nil, noise: noise, concatenatesChannels: !blending,
            latentChannels: shape.channels, latentPixels: shape.height * shape.width)
        return LatentStart(latents: latents, inpainting: conditioning)
    }
}

/// diffusers' `init_image * (mask < 0.5)`: the repainted region set to zero (mid grey). `pixels` HWC,
/// `mask` HW.
func maskedImage(_ pixels: [Float], mask: [Float]) -> [Float] {
    var out = pixels
    for i in 0..<out.count { out[i] *= mask[i / 3] < 0.5 ? 1 : 0 }
    return out
}

/// `torch.nn.functional.interpolate(mask, size=(h / f, w / f))` (mode "nearest"): output pixel
/// (y, x) takes input (floor(y * f), floor(x * f)), i.e. the top-left pixel of each f x f block.
func nearestDownsample(_ mask: [Float], width: Int, height: Int, factor f: Int) -> [Float] {
    let (h, w) = (height / f, width / f)
    var out = [Float](repeating: 0, count: h * w)
    for y in 0..<h {
        for x in 0..<w { out[y * w + x] = mask[(y * f) * width + x * f] }
    }
    return out
}
