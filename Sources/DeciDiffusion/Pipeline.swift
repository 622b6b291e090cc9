import DeciImage
import DeciModels
import DeciRandom
import DeciSchedulers
import DeciTensor
import DeciTokenizer
import DeciWeights
import Foundation

/// Where a generation stands, reported after every denoising step.
public struct StepProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var timestep: Float
    public var elapsed: Double
}

/// The user stopped a generation from the progress callback.
public struct GenerationCancelled: Error, CustomStringConvertible {
    public var description: String { "generation cancelled" }
}

/// Output of one generation.
public struct GenerationResult: Sendable {
    public var images: [RGBImage]
    public var request: ResolvedRequest
    /// The scheduler's display name (A1111 style where one exists).
    public var sampler: String
    /// Things the user should know (e.g. truncated prompts), as diffusers logs them.
    public var warnings: [String]
    public var timings: Timings

    public struct Timings: Sendable {
        public var textEncoder: Double = 0
        public var denoising: Double = 0
        public var vaeEncode: Double = 0
        public var vaeDecode: Double = 0
        public var steps: Int = 0
    }
}

/// Text-to-image and image-to-image over a diffusers-layout checkpoint: DeciDiffusion
/// (`flexible_unet/`) or Stable Diffusion 1.x/2.x (`unet/`). Stages mirror diffusers'
/// StableDiffusionPipeline: validate, encode prompt, timesteps, latents, denoise, decode.
public final class DiffusionPipeline: @unchecked Sendable {
    public let layout: CheckpointLayout
    public let precision: Precision
    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel
    public let denoiser: any Denoiser
    public let vae: AutoencoderKL
    public let schedulerConfig: SchedulerConfig
    public let defaults: PipelineDefaults
    /// Decode (and encode) in overlapping tiles, as diffusers' `enable_vae_tiling`.
    public var vaeTiling: VAETiling?
    /// Seconds spent loading.
    public let loadSeconds: Double

    /// Loads every component from a checkpoint folder (see ``CheckpointLayout/locate(_:environment:)``).
    public init(folder: URL, precision: Precision = .f32, variant: String? = nil) throws {
        let t0 = Date()
        layout = try CheckpointLayout(root: folder)
        self.precision = precision
        tokenizer = try CLIPTokenizer(directory: layout.tokenizer)
        textEncoder = try CLIPTextModel.load(folder: layout.textEncoder.path, variant: variant, precision: precision)
        switch layout.denoiser {
        case .unetNAS: denoiser = try UNetNAS.load(folder: layout.denoiserFolder.path, variant: variant, precision: precision)
        case .unet2DCondition:
            denoiser = try UNet2DConditionModel.load(folder: layout.denoiserFolder.path, variant: variant, precision: precision)
        }
        vae = try AutoencoderKL.load(directory: layout.vae.path, precision: precision)
        schedulerConfig = try SchedulerConfig.load(contentsOf: layout.scheduler.appendingPathComponent("scheduler_config.json"))
        guard denoiser.contextChannels == textEncoder.config.hiddenSize else {
            throw CheckpointError("\(layout.denoiserFolder.path): cross_attention_dim \(denoiser.contextChannels) does not match the text encoder's hidden_size \(textEncoder.config.hiddenSize)")
        }
        let size = vae.config.sampleSize
        defaults = layout.denoiser == .unetNAS ? .deciDiffusion(size: size) : .stableDiffusion(size: size)
        loadSeconds = Date().timeIntervalSince(t0)
    }

    /// Image sides must be multiples of this: the VAE's factor times the UNet's downsampling.
    public var imageSizeMultiple: Int { vae.scaleFactor * denoiser.latentSizeMultiple }

    /// The scheduler a request runs with: the checkpoint's own, or one chosen by name.
    public func makeScheduler(for request: GenerationRequest) throws -> any Scheduler {
        if let name = request.scheduler { return try DeciSchedulers.makeScheduler(named: name, config: schedulerConfig) }
        return try DeciSchedulers.makeScheduler(config: schedulerConfig)
    }

    /// Runs a request; `progress` is called after every step and stops the run by returning false.
    public func generate(_ request: GenerationRequest, progress: ((StepProgress) -> Bool)? = nil) throws -> GenerationResult {
        // 1. Validate everything up front.
        let req = try request.resolved(defaults: defaults, sizeMultiple: imageSizeMultiple,
                                       maxTextEncoderSkip: textEncoder.config.numHiddenLayers - 1)
        var scheduler = try makeScheduler(for: request)
        if var ddim = scheduler as? DDIMScheduler {
            ddim.eta = Float(req.eta)
            scheduler = ddim
        }
        var timings = GenerationResult.Timings()
        var warnings: [String] = []

        // 2. Text states: [uncond x B, cond x B] when guiding, else [cond x B].
        var t0 = Date()
        let context = try encodePrompts(req, warnings: &warnings)
        timings.textEncoder = Date().timeIntervalSince(t0)

        // 3. Timesteps (image-to-image keeps the last `strength` of the schedule).
        try scheduler.setTimesteps(req.steps)
        var timesteps = scheduler.timesteps
        var rng = TorchRandomSource(seed: req.seed)
        let (lh, lw) = (req.height / vae.scaleFactor, req.width / vae.scaleFactor)
        let latentChannels = vae.config.latentChannels
        let perImage = latentChannels * lh * lw
        let batch = req.batch

        // 4. Initial latents, NCHW-ordered like torch so noise lines up element for element.
        var latents: [Float]
        if let image = request.initImage {
            let start = try img2imgStart(steps: req.steps, strength: req.strength, scheduler: &scheduler)
            timesteps = Array(scheduler.timesteps[start...])
            guard let first = timesteps.first else {
                throw RequestError("strength: \(req.strength) with \(req.steps) steps leaves no denoising step")
            }
            t0 = Date()
            let encoded = try encodeImage(image, width: req.width, height: req.height, rng: &rng)
            timings.vaeEncode = Date().timeIntervalSince(t0)
            // diffusers repeats the single image's latents for the whole batch, then draws the noise.
            var initLatents: [Float] = []
            for _ in 0..<batch { initLatents += encoded }
            let noise = rng.normal(count: batch * perImage)
            latents = try scheduler.addNoise(original: initLatents, noise: noise, timestep: first)
        } else {
            let sigma = scheduler.initNoiseSigma
            latents = rng.normal(count: batch * perImage).map { $0 * sigma }
        }

        // 5. Denoising loop.
        t0 = Date()
        let cfg = req.doClassifierFreeGuidance
        for (i, t) in timesteps.enumerated() {
            let modelInput = cfg ? latents + latents : latents
            let scaled = try scheduler.scaleModelInput(modelInput, timestep: t)
            let n = cfg ? 2 * batch : batch
            let x = Tensor.fromNCHW(scaled, n: n, c: latentChannels, h: lh, w: lw)
            let prediction = denoiser(x, timesteps: [t], context: context).toNCHW()
            let guided: [Float]
            if cfg {
                let half = batch * perImage
                guided = try applyGuidance(uncond: Array(prediction[..<half]), cond: Array(prediction[half...]), scale: req.guidanceScale,
                                           rescale: req.guidanceRescale, elementsPerImage: perImage)
            } else {
                guided = prediction
            }
            latents = try scheduler.step(modelOutput: guided, timestep: t, sample: latents, noise: &rng).prevSample
            timings.steps += 1
            if let progress, !progress(StepProgress(step: i + 1, totalSteps: timesteps.count, timestep: t,
                                                    elapsed: Date().timeIntervalSince(t0))) {
                throw GenerationCancelled()
            }
        }
        timings.denoising = Date().timeIntervalSince(t0)

        // 6. Decode.
        t0 = Date()
        let images = try decode(latents, batch: batch, height: lh, width: lw)
        timings.vaeDecode = Date().timeIntervalSince(t0)
        return GenerationResult(images: images, request: req, sampler: request.scheduler ?? scheduler.className, warnings: warnings,
                                timings: timings)
    }

    /// Prompt embeddings repeated per image (prompt-major, as diffusers orders them), with the
    /// unconditional ones first when guiding.
    func encodePrompts(_ req: ResolvedRequest, warnings: inout [String]) throws -> Tensor {
        func embed(_ texts: [String]) throws -> Tensor {
            let tokens = texts.map { tokenizer.encode($0) }
            for t in tokens {
                if let dropped = t.droppedText {
                    warnings.append("The following part of your input was truncated because CLIP can only handle sequences up to \(tokenizer.maxLength) tokens: \(dropped)")
                }
            }
            return try textEncoder(tokens.map(\.ids), clipSkip: req.clipSkip)
        }
        let cond = try embed(req.prompts)
        let parts = req.doClassifierFreeGuidance ? [try embed(req.negativePrompts), cond] : [cond]
        let (tokens, channels) = (cond.shape[1], cond.shape[2])
        let rowsPerPrompt = tokens * channels
        let out = Tensor(shape: [parts.count * req.batch, tokens, channels])
        var dst = 0
        for part in parts {
            for p in 0..<req.prompts.count {
                for _ in 0..<req.imagesPerPrompt {
                    (out.pointer + dst).update(from: part.pointer + p * rowsPerPrompt, count: rowsPerPrompt)
                    dst += rowsPerPrompt
                }
            }
        }
        return out
    }

    /// diffusers' `get_timesteps`: skip the first `steps - int(steps * strength)` steps.
    func img2imgStart(steps: Int, strength: Double, scheduler: inout any Scheduler) throws -> Int {
        let initTimestep = min(Int(Double(steps) * strength), steps)
        let start = max(steps - initTimestep, 0) * scheduler.order
        if scheduler.supportsBeginIndex { scheduler.setBeginIndex(start) }
        return start
    }

    /// VAE latents of one init image (NCHW order), sampled from the latent distribution with the
    /// pipeline's generator and scaled, as diffusers' img2img `prepare_latents` does.
    func encodeImage(_ image: RGBImage, width: Int, height: Int, rng: inout TorchRandomSource) throws -> [Float] {
        let pixels = try image.preprocessedForVAE(width: width, height: height, scaleFactor: vae.scaleFactor)
        let x = Tensor(shape: [1, pixels.height, pixels.width, 3], data: pixels.values)
        let (c, h, w) = (vae.config.latentChannels, pixels.height / vae.scaleFactor, pixels.width / vae.scaleFactor)
        let noise = Tensor.fromNCHW(rng.normal(count: c * h * w), n: 1, c: c, h: h, w: w)
        return vae.encodeLatents(x, noise: noise, tiling: vaeTiling).toNCHW()
    }

    func decode(_ latents: [Float], batch: Int, height: Int, width: Int) throws -> [RGBImage] {
        let z = Tensor.fromNCHW(latents, n: batch, c: vae.config.latentChannels, h: height, w: width)
        let images = vae.decodeLatents(z, tiling: vaeTiling)
        return try RGBImage.batch(denormalizing: images.toArray(), count: batch, width: images.shape[2], height: images.shape[1])
    }
}

extension AutoencoderKL {
    /// Pixels per latent along each side: 2 per downsampling block.
    public var scaleFactor: Int { 1 << (config.blockOutChannels.count - 1) }
}
