// The generation loop, stage by stage as diffusers' StableDiffusionPipeline, ...Img2ImgPipeline and
// ...InpaintPipeline (0.42) run them: validate, encode prompts, timesteps, initial latents (drawing
// random numbers in diffusers' order), denoise, decode.
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
    /// Steps done so far (1 after the first).
    public var step: Int
    public var totalSteps: Int
    /// The timestep the step just taken started from.
    public var timestep: Float
    /// Seconds since the denoising loop started.
    public var elapsed: Double
    /// The step's clean-latent estimate, for ``LatentPreview/rgb(_:upscaledTo:)`` or
    /// ``DiffusionPipeline/decodePreview(_:vaeTiling:)``; free unless read.
    public let preview: LatentPreviewSource

    public init(step: Int, totalSteps: Int, timestep: Float, elapsed: Double, preview: LatentPreviewSource) {
        (self.step, self.totalSteps, self.timestep, self.elapsed, self.preview) = (step, totalSteps, timestep, elapsed, preview)
    }
}

/// The user stopped a generation from the progress callback.
public struct GenerationCancelled: Error, CustomStringConvertible {
    /// Steps finished before stopping.
    public var completedSteps: Int
    /// The images of the clean-latent estimate at the stop (A1111's interrupt hands back the
    /// current image), when ``DiffusionPipeline/generate(_:limits:partialOnCancel:progress:)`` was
    /// asked for them; nil otherwise.
    public var partial: GenerationResult?
    /// The estimate `partial` is decoded from.
    var estimate: LatentPreviewSource?

    public init(completedSteps: Int, partial: GenerationResult? = nil) {
        self.completedSteps = completedSteps
        self.partial = partial
    }

    public var description: String { "generation cancelled after \(completedSteps) step(s)" }
}

/// Output of one generation.
public struct GenerationResult: Sendable {
    public var images: [RGBImage]
    /// The decoded images before 8-bit rounding: NHWC `[n, h, w, 3]` in [0, 1] (diffusers'
    /// `output_type="np"`).
    public var pixels: [Float]
    public var request: ResolvedRequest
    /// The scheduler's display name (A1111 style where one exists).
    public var sampler: String
    /// Things the user should know (e.g. truncated prompts), as diffusers logs them.
    public var warnings: [String]
    public var timings: Timings

    public struct Timings: Sendable {
        // Public (the memberwise one is internal) so a database-backed queue can rebuild stored values.
        public init(textEncoder: Double = 0, denoising: Double = 0, vaeEncode: Double = 0, vaeDecode: Double = 0, steps: Int = 0) {
            (self.textEncoder, self.denoising, self.vaeEncode, self.vaeDecode, self.steps) = (textEncoder, denoising, vaeEncode, vaeDecode, steps)
        }

        public var textEncoder: Double = 0
        public var denoising: Double = 0
        public var vaeEncode: Double = 0
        public var vaeDecode: Double = 0
        public var steps: Int = 0
    }
}

/// Text-to-image, image-to-image and inpainting over a diffusers-layout checkpoint: DeciDiffusion
/// (`flexible_unet/`) or Stable Diffusion 1.x/2.x (`unet/`, 4 or 9 input channels). Same seed, same
/// image as diffusers with `torch.Generator("cpu").manual_seed(seed)`.
public final class DiffusionPipeline: @unchecked Sendable {
    public let layout: CheckpointLayout
    public let precision: Precision
    /// The checkpoint's tokenizer, with the tokens of loaded textual inversions.
    public internal(set) var tokenizer: CLIPTokenizer
    /// Textual inversions loaded (``loadTextualInversion(path:name:)``), in order.
    public internal(set) var textualInversions: [TextualInversion] = []
    /// Their vectors, `[n, hidden]`: the rows of the token ids after the checkpoint's vocabulary.
    var extraEmbeddings: Tensor?
    public let textEncoder: CLIPTextModel
    public let denoiser: any Denoiser
    public let vae: AutoencoderKL
    public let schedulerConfig: SchedulerConfig
    public let defaults: PipelineDefaults
    /// Seconds spent loading.
    public let loadSeconds: Double
    /// The LoRAs merged into the text encoder and denoiser now, if any.
    public private(set) var loras: LoRASet?
    /// How the merged LoRAs were asked for (``setLoRAs(_:references:)``), for a caller that switches.
    public private(set) var loraReferences: [LoRAReference] = []
    /// The set the components loaded with: it holds their merges (and the layers they record).
    let loadedLoRAs: LoRASet

    /// Loads every component from a checkpoint folder (see ``CheckpointLayout/locate(_:environment:)``).
    /// `variant` prefers `*.<variant>.safetensors` files (e.g. "fp16") where a component has them.
    /// `loras` are merged into the text encoder's and denoiser's weights as they load (their
    /// ``LoRASet/warnings`` say what a lenient set skipped).
    public init(folder: URL, precision: Precision = .f32, variant: String? = nil, loras: LoRASet? = nil) throws {
        let t0 = Date()
        let layout = try CheckpointLayout(root: folder)
        func component<T>(_ url: URL, _ load: () throws -> T) throws -> T {
            do { return try load() } catch let e as CheckpointError { throw e } catch {
                throw CheckpointError("\(url.path): cannot load the \(url.lastPathComponent) component: \(error)")
            }
        }
        let tokenizer = try component(layout.tokenizer) { try CLIPTokenizer(directory: layout.tokenizer) }
        // Always a set, empty without LoRAs: its merges record the layers, so LoRAs can come later.
        let loadedLoRAs = try loras ?? LoRASet([])
        self.loadedLoRAs = loadedLoRAs
        let textEncoder = try component(layout.textEncoder) {
            try CLIPTextModel.load(directory: layout.textEncoder.path, precision: precision, variant: variant, loras: loadedLoRAs)
        }
        let denoiserFolder = layout.denoiserFolder
        let denoiser: any Denoiser = try component(denoiserFolder) {
            switch layout.denoiser {
            case .unetNAS: try UNetNAS.load(directory: denoiserFolder.path, precision: precision, variant: variant, loras: loadedLoRAs)
            case .unet2DCondition:
                try UNet2DConditionModel.load(directory: denoiserFolder.path, precision: precision, variant: variant,
                                              loras: loadedLoRAs)
            }
        }
        let vae = try component(layout.vae) { try AutoencoderKL.load(directory: layout.vae.path, precision: precision, variant: variant) }
        let schedulerFile = layout.scheduler.appendingPathComponent("scheduler_config.json")
        schedulerConfig = try component(layout.scheduler) { try SchedulerConfig.load(contentsOf: schedulerFile) }
        guard denoiser.contextChannels == textEncoder.config.hiddenSize else {
            throw CheckpointError("\(denoiserFolder.path): cross_attention_dim \(denoiser.contextChannels) does not match the text encoder's hidden_size \(textEncoder.config.hiddenSize)")
        }
        let latents = vae.config.latentChannels
        guard denoiser.outChannels == latents, denoiser.inChannels == latents || denoiser.inChannels == 2 * latents + 1 else {
            throw CheckpointError("\(denoiserFolder.path): in/out channels \(denoiser.inChannels)/\(denoiser.outChannels) do not fit the VAE's \(latents) latent channels (want \(latents), or \(2 * latents + 1) in for inpainting)")
        }
        (self.layout, self.precision, self.tokenizer, self.textEncoder, self.denoiser, self.vae) =
            (layout, precision, tokenizer, textEncoder, denoiser, vae)
        self.loras = loras
        let size = vae.config.sampleSize
        defaults = layout.denoiser == .unetNAS ? .deciDiffusion(size: size) : .stableDiffusion(size: size)
        // Every layer has packed its own weights; the loader's staging buffer (tens of MB) is done.
        StagingBuffer.release()
        loadSeconds = Date().timeIntervalSince(t0)
    }

    /// Replaces the merged LoRAs by `set` (nil: none) in the loaded text encoder and denoiser,
    /// without reading the checkpoint again: touched layers get their original weights back plus
    /// the new deltas. Modules that match nothing fail the call first (listing them) unless the set
    /// is lenient. Not while a generation runs; a pipeline loaded with LoRAs needs
    /// ``LoRASet/keepsOriginals`` to change them.
    public func setLoRAs(_ set: LoRASet?, references: [LoRAReference] = []) throws {
        let applications = set?.applications ?? []
        var merges: [LoRAMerge] = []
        for component in [LoRAComponent.textEncoder, .denoiser] {
            guard let merge = loadedLoRAs.merge(component) else { throw LoRAError("\(component.rawValue): not loaded with a LoRA merge") }
            try set?.report(merge.unmatched(in: applications))
            merges.append(merge)
        }
        for merge in merges { _ = try merge.replace(with: applications) }
        (loras, loraReferences) = (set, references)
    }

    /// Image sides must be multiples of this: the VAE's factor times the UNet's downsampling.
    public var imageSizeMultiple: Int { vae.scaleFactor * denoiser.latentSizeMultiple }

    /// Whether the denoiser is an inpainting model (latents + mask + masked-image latents in).
    public var isInpaintingModel: Bool { denoiser.inChannels == 2 * vae.config.latentChannels + 1 }

    /// Fills in the model's defaults and checks the request against the model (the first stage of
    /// ``generate(_:limits:partialOnCancel:progress:)``, exposed so callers can show the resolved settings up front).
    public func resolve(_ request: GenerationRequest) throws -> ResolvedRequest {
        let req = try request.resolved(defaults: defaults, sizeMultiple: imageSizeMultiple,
                                       maxTextEncoderSkip: textEncoder.config.numHiddenLayers - 1)
        if isInpaintingModel && req.mode != .inpainting {
            throw RequestError("mask: \(layout.denoiserFolder.lastPathComponent)/ is an inpainting model (\(denoiser.inChannels) input channels); it needs an init image and a mask")
        }
        // Named after the field, as every other request error is (an unknown name, or a step count
        // the scheduler cannot take).
        // Setting the timesteps checks the step count against the schedule (cheap: no model runs).
        do {
            var scheduler = try makeScheduler(for: req)
            try scheduler.setTimesteps(req.steps)
        } catch { throw RequestError("scheduler: \(error)") }
        return req
    }

    /// The scheduler a request runs with: the checkpoint's own, or one chosen by name (keeping the
    /// checkpoint's betas, prediction type and spacing), with the request's DDIM eta.
    public func makeScheduler(for request: ResolvedRequest) throws -> any Scheduler {
        var scheduler: any Scheduler
        if let name = request.scheduler {
            scheduler = try DeciSchedulers.makeScheduler(named: name, config: schedulerConfig)
        } else {
            scheduler = try DeciSchedulers.makeScheduler(config: schedulerConfig)
        }
        if var ddim = scheduler as? DDIMScheduler {
            ddim.eta = Float(request.eta)
            scheduler = ddim
        }
        return scheduler
    }

    /// Runs a request; `progress` is called after every step and stops the run (throwing
    /// ``GenerationCancelled``) by returning false; with `partialOnCancel` the error carries the
    /// VAE decode of the estimate at that step in ``GenerationCancelled/partial``. With `limits`, a
    /// request over them is refused before any work (``resolve(_:limits:)``).
    public func generate(_ request: GenerationRequest, limits: GenerationLimits? = nil, partialOnCancel: Bool = false,
                         progress: ((StepProgress) -> Bool)? = nil) throws -> GenerationResult {
        let req = try limits.map { try resolve(request, limits: $0) } ?? resolve(request)
        // A fault left on this thread by work outside the pipeline belongs to that work.
        _ = Backend.takeFault()
        do {
            return try run(req, sampler: request.scheduler, partialOnCancel: partialOnCancel, progress: progress)
        } catch {
            // A pending fault is the root cause of whatever failed after it; taking it also leaves
            // the thread clean for the next job, and the failed job's buffers go back (after
            // running out of memory, the next job needs them most).
            let fault = Backend.takeFault()
            Backend.trimMemory()
            if let fault { throw fault }
            throw error
        }
    }

    /// The stages of ``generate(_:limits:partialOnCancel:progress:)`` for a resolved request; the
    /// backend is checked for a fault after every stage that runs a model.
    func run(_ req: ResolvedRequest, sampler: String?, partialOnCancel: Bool, progress: ((StepProgress) -> Bool)?) throws -> GenerationResult {
        var scheduler = try makeScheduler(for: req)
        var timings = GenerationResult.Timings()
        var warnings: [String] = []
        let context = try timed(&timings.textEncoder) {
            let conditioning = try textConditioning(for: req)
            try Backend.checkFault()
            warnings += conditioning.warnings
            return conditioning
        }
        let timesteps = try prepareTimesteps(req, scheduler: &scheduler)
        var rng = TorchRandomSource(seed: req.seed)
        let start = try timed(&timings.vaeEncode) {
            let start = try prepareLatents(req, timesteps: timesteps, scheduler: scheduler, rng: &rng)
            try Backend.checkFault()
            return start
        }
        var stepsDone = 0
        let latents: [Float]
        do {
            latents = try timed(&timings.denoising) {
                try denoise(start, context: context, timesteps: timesteps, req: req, scheduler: &scheduler, rng: &rng,
                            progress: progress, steps: &stepsDone)
            }
        } catch var cancelled as GenerationCancelled {
            if partialOnCancel, let estimate = cancelled.estimate {
                timings.steps = stepsDone
                Backend.trimMemory()
                let (images, pixels) = try timed(&timings.vaeDecode) { try decode(estimate.latents, req: req) }
                cancelled.partial = GenerationResult(images: images, pixels: pixels, request: req, sampler: sampler ?? scheduler.className,
                                                     warnings: warnings, timings: timings)
            }
            throw cancelled
        }
        timings.steps = stepsDone
        // The denoiser's cached activation buffers are the wrong sizes for the VAE: hand them back
        // so the decoder's peak does not stack on top of them.
        Backend.trimMemory()
        let (images, pixels) = try timed(&timings.vaeDecode) { try decode(latents, req: req) }
        Backend.trimMemory()
        return GenerationResult(images: images, pixels: pixels, request: req, sampler: sampler ?? scheduler.className,
                                warnings: warnings, timings: timings)
    }

    // MARK: - Stages

    /// Latent geometry of a request.
    struct LatentShape {
        let batch: Int, channels: Int, height: Int, width: Int
        var perImage: Int { channels * height * width }
        var count: Int { batch * perImage }
    }

    func latentShape(_ req: ResolvedRequest) -> LatentShape {
        LatentShape(batch: req.batch, channels: vae.config.latentChannels, height: req.height / vae.scaleFactor,
                    width: req.width / vae.scaleFactor)
    }

    /// The timesteps to run: the whole schedule for text-to-image (diffusers' text-to-image pipeline
    /// sets no begin index), the last `int(steps * strength)` steps otherwise (`get_timesteps`).
    func prepareTimesteps(_ req: ResolvedRequest, scheduler: inout any Scheduler) throws -> [Float] {
        let timesteps: [Float]
        if req.mode == .textToImage {
            try scheduler.setTimesteps(req.steps)
            timesteps = scheduler.timesteps
        } else {
            timesteps = try scheduler.prepareTimesteps(steps: req.steps, strength: req.strength)
        }
        guard !timesteps.isEmpty else {
            throw RequestError("strength: \(req.strength) with \(req.steps) steps leaves no denoising step")
        }
        return timesteps
    }

    /// Where denoising starts: the initial latents (NCHW-ordered, so torch's noise lines up element
    /// for element) and, for inpainting, what every step needs besides them.
    struct LatentStart {
        var latents: [Float]
        var inpainting: InpaintingConditioning?
    }

    /// Initial latents, drawing from `rng` in diffusers' order: text-to-image `randn * init_sigma`;
    /// image-to-image VAE-encode sample, then noise, then `add_noise` at the first timestep;
    /// inpainting as ``prepareInpainting(_:timesteps:scheduler:rng:)``.
    func prepareLatents(_ req: ResolvedRequest, timesteps: [Float], scheduler: any Scheduler,
                        rng: inout TorchRandomSource) throws -> LatentStart {
        let shape = latentShape(req)
        switch req.mode {
        case .textToImage:
            let sigma = scheduler.initNoiseSigma
            return LatentStart(latents: rng.normal(count: shape.count).map { $0 * sigma })
        case .imageToImage:
            let pixels = try vaeInput(req)
            let imageLatents = repeated(encodeImage(pixels, width: req.width, height: req.height, req: req, rng: &rng), times: shape.batch)
            let noise = rng.normal(count: shape.count)
            return LatentStart(latents: try scheduler.addNoise(original: imageLatents, noise: noise, timestep: timesteps[0]))
        case .inpainting:
            return try prepareInpainting(req, timesteps: timesteps, scheduler: scheduler, rng: &rng)
        }
    }

    /// The init image as the VAE takes it: resized to the output size, HWC in [-1, 1].
    func vaeInput(_ req: ResolvedRequest) throws -> [Float] {
        guard let image = req.initImage else { throw RequestError("init image: missing") }
        return try image.preprocessedForVAE(width: req.width, height: req.height, scaleFactor: vae.scaleFactor).values
    }

    /// VAE latents (NCHW order) of one HWC image in [-1, 1] at the request's size: a sample of the
    /// posterior drawn with the pipeline's generator, scaled (diffusers' `retrieve_latents` +
    /// `scaling_factor *`).
    func encodeImage(_ pixels: [Float], width: Int, height: Int, req: ResolvedRequest, rng: inout TorchRandomSource) -> [Float] {
        let f = vae.scaleFactor
        let x = Tensor(shape: [1, height, width, 3], data: pixels)
        let (c, lh, lw) = (vae.config.latentChannels, height / f, width / f)
        let noise = Tensor.fromNCHW(rng.normal(count: c * lh * lw), n: 1, c: c, h: lh, w: lw)
        return vae.encodeLatents(x, noise: noise, tiling: tiling(req)).toNCHW()
    }

    /// The denoising loop: classifier-free guidance as one batch of `2B` (unconditional first), or
    /// as two calls when the two contexts differ in length; guidance rescale, a scheduler step, and
    /// for 4-channel inpainting the mask blend.
    func denoise(_ start: LatentStart, context: TextConditioning, timesteps: [Float], req: ResolvedRequest, scheduler: inout any Scheduler,
                 rng: inout TorchRandomSource, progress: ((StepProgress) -> Bool)?, steps: inout Int) throws -> [Float] {
        let shape = latentShape(req)
        let cfg = req.doClassifierFreeGuidance
        let copies = cfg ? 2 : 1
        var latents = start.latents
        let t0 = Date()
        for (i, t) in timesteps.enumerated() {
            var input = try scheduler.scaleModelInput(cfg ? latents + latents : latents, timestep: t)
            var channels = shape.channels
            if let inpainting = start.inpainting, inpainting.concatenatesChannels {
                input = inpainting.modelInput(scaled: input, copies: copies)
                channels = denoiser.inChannels
            }
            let prediction = try predict(input, context: context, batch: shape.batch, copies: copies, channels: channels,
                                         shape: shape, timestep: t)
            let guided = try guide(prediction, req: req, perImage: shape.perImage)
            let sample = latents
            let output = try scheduler.step(modelOutput: guided, timestep: t, sample: sample, noise: &rng)
            latents = output.prevSample
            if let inpainting = start.inpainting, !inpainting.concatenatesChannels {
                latents = try inpainting.blend(latents, nextTimestep: i + 1 < timesteps.count ? timesteps[i + 1] : nil,
                                               scheduler: scheduler)
            }
            steps = i + 1
            if let progress {
                let preview = previewSource(output, guided: guided, sample: sample, latents: latents, timestep: t,
                                            scheduler: scheduler, shape: shape)
                if !progress(StepProgress(step: i + 1, totalSteps: timesteps.count, timestep: t,
                                          elapsed: Date().timeIntervalSince(t0), preview: preview)) {
                    var cancelled = GenerationCancelled(completedSteps: i + 1)
                    cancelled.estimate = preview
                    throw cancelled
                }
            }
        }
        return latents
    }

    /// The denoiser's prediction (NCHW order) for `copies` stacked latent batches: one call on the
    /// batched context, or (contexts of different lengths) one call per half, unconditional first.
    func predict(_ input: [Float], context: TextConditioning, batch: Int, copies: Int, channels: Int, shape: LatentShape,
                 timestep t: Float) throws -> [Float] {
        func call(_ values: ArraySlice<Float>, _ states: Tensor, n: Int) throws -> [Float] {
            let x = Tensor.fromNCHW(Array(values), n: n, c: channels, h: shape.height, w: shape.width)
            let predicted = denoiser(x, timesteps: [t], context: states)
            try Backend.checkFault()
            return predicted.toNCHW()
        }
        if let states = context.batched { return try call(input[...], states, n: copies * batch) }
        guard let uncond = context.uncond else { return try call(input[...], context.cond, n: batch) }
        let half = input.count / 2
        return try call(input[..<half], uncond, n: batch) + call(input[half...], context.cond, n: batch)
    }

    /// `uncond + s (cond - uncond)`, then guidance rescale when asked; the prediction as is without guidance.
    func guide(_ prediction: [Float], req: ResolvedRequest, perImage: Int) throws -> [Float] {
        guard req.doClassifierFreeGuidance else { return prediction }
        let half = prediction.count / 2
        return try applyGuidance(uncond: Array(prediction[..<half]), cond: Array(prediction[half...]), scale: req.guidanceScale,
                                 rescale: req.guidanceRescale, elementsPerImage: perImage)
    }

    /// The VAE tiling a request asks for: the checkpoint's default tiles, or none.
    func tiling(_ req: ResolvedRequest) -> VAETiling? { req.vaeTiling ? defaultVAETiling : nil }

    /// VAE decode of the final latents; 8-bit images and the [0, 1] floats they were rounded from.
    func decode(_ latents: [Float], req: ResolvedRequest) throws -> ([RGBImage], [Float]) {
        let shape = latentShape(req)
        return try decode(latents, batch: shape.batch, height: shape.height, width: shape.width, tiling: tiling(req))
    }

    /// VAE decode of NCHW latents `[batch, latentChannels, height, width]` in the denoiser's scaled space.
    func decode(_ latents: [Float], batch: Int, height: Int, width: Int, tiling: VAETiling?) throws -> ([RGBImage], [Float]) {
        let channels = vae.config.latentChannels
        guard batch > 0, height > 0, width > 0, latents.count == batch * channels * height * width else {
            throw RequestError("latents: \(latents.count) values do not make \(batch) x \(channels) x \(height) x \(width)")
        }
        let z = Tensor.fromNCHW(latents, n: batch, c: channels, h: height, w: width)
        let decoded = vae.decodeLatents(z, tiling: tiling)
        try Backend.checkFault()
        let values = decoded.toArray()
        let images = try RGBImage.batch(denormalizing: values, count: batch, width: decoded.shape[2], height: decoded.shape[1])
        // diffusers' postprocess: (x / 2 + 0.5).clamp(0, 1), in float32.
        let pixels = values.map { v -> Float in v.isNaN ? v : min(max(v / 2 + 0.5, 0), 1) }
        return (images, pixels)
    }
}

/// `n` copies of `values` one after another (torch's `repeat` along the batch dimension).
func repeated(_ values: [Float], times n: Int) -> [Float] {
    var out: [Float] = []
    out.reserveCapacity(values.count * n)
    for _ in 0..<n { out += values }
    return out
}

/// Runs `body`, adding its wall time to `seconds`.
func timed<T>(_ seconds: inout Double, _ body: () throws -> T) rethrows -> T {
    let t0 = Date()
    defer { seconds += Date().timeIntervalSince(t0) }
    return try body()
}
