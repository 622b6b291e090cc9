import DeciImage
import DeciTokenizer
import Foundation

/// What to generate. Fields left nil take the model's defaults (``PipelineDefaults``).
public struct GenerationRequest: Sendable {
    public var prompts: [String]
    /// One per prompt, or a single one for all; nil = the empty string, as diffusers does.
    public var negativePrompts: [String]?
    public var imagesPerPrompt: Int = 1
    public var width: Int?
    public var height: Int?
    public var steps: Int?
    public var guidanceScale: Double?
    /// nil: the checkpoint's default for text-to-image, 0 for image-to-image and inpainting (as
    /// diffusers' pipelines for those modes, which have no rescale).
    public var guidanceRescale: Double?
    /// A scheduler name (`ddim`, `euler_a`, `DPM++ 2M Karras`, ...) replacing the checkpoint's,
    /// keeping its beta schedule and prediction type.
    public var scheduler: String?
    public var seed: UInt64 = 0
    /// DDIM's eta (0 = deterministic).
    public var eta: Double = 0
    /// Text-encoder layers to skip from the end (0 = last layer, as diffusers' `clip_skip` None).
    public var clipSkip: Int = 0
    /// Image-to-image / inpainting source image.
    public var initImage: RGBImage?
    /// How much of the schedule image-to-image and inpainting run, in (0, 1]; nil takes diffusers'
    /// defaults: 0.8 for image-to-image, 1.0 (start from pure noise) for inpainting.
    public var strength: Double?
    /// Inpainting mask, same framing as `initImage`: luma of 128 and above is repainted (white),
    /// below is kept, after resizing to the output size.
    public var mask: RGBImage?
    /// Decode (and encode) with the VAE in overlapping tiles, with the pipeline's
    /// ``DiffusionPipeline/defaultVAETiling`` (diffusers' `enable_vae_tiling`): bounded memory for
    /// large images. A request option rather than pipeline state, so jobs sharing a pipeline choose
    /// independently.
    public var vaeTiling: Bool = false
    /// How prompt text becomes text states: `.none` (the default) is diffusers' plain encoding, so
    /// a request gives diffusers' image for the same seed; `.a1111` reads A1111's attention syntax
    /// and BREAK and encodes long prompts in 75-token chunks (what A1111 API clients expect).
    public var promptWeighting: PromptWeighting = .none
    /// With `.a1111` weighting, when prompt and negative prompt have different chunk counts: pad
    /// the shorter with the empty prompt's encoding and run one batched denoiser call (A1111's
    /// "pad prompt/negative prompt" option) instead of two calls on their own lengths (its default).
    public var padCondUncond: Bool = false

    public init(prompt: String, negativePrompt: String? = nil) {
        prompts = [prompt]
        negativePrompts = negativePrompt.map { [$0] }
    }

    public init(prompts: [String], negativePrompts: [String]? = nil) {
        self.prompts = prompts
        self.negativePrompts = negativePrompts
    }
}

/// How prompt text becomes the text states the denoiser attends to.
public enum PromptWeighting: String, Sendable, CaseIterable, Codable {
    /// diffusers' StableDiffusionPipeline: the text as is, cut at 77 tokens with a warning.
    case none
    /// AUTOMATIC1111's web UI: `(word)` x1.1, `[word]` /1.1, `(word:1.3)`, `\(` escapes and
    /// `BREAK`; any length, in 75-token chunks encoded one by one; weights multiplied into the
    /// encoder output and each chunk's mean restored.
    case a1111
}

/// Sampling defaults of a checkpoint family.
public struct PipelineDefaults: Sendable, Equatable {
    public var steps: Int
    public var guidanceScale: Double
    public var guidanceRescale: Double
    public var width: Int
    public var height: Int

    /// DeciDiffusion's custom pipeline: 30 steps, CFG 7.5 with guidance rescale 0.7.
    public static func deciDiffusion(size: Int) -> PipelineDefaults {
        PipelineDefaults(steps: 30, guidanceScale: 7.5, guidanceRescale: 0.7, width: size, height: size)
    }

    /// diffusers' StableDiffusionPipeline: 50 steps, CFG 7.5, no rescale.
    public static func stableDiffusion(size: Int) -> PipelineDefaults {
        PipelineDefaults(steps: 50, guidanceScale: 7.5, guidanceRescale: 0, width: size, height: size)
    }
}

/// A request the pipeline cannot run; the message names the field and its value.
public struct RequestError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// What a request asks for, decided by which images it carries.
public enum GenerationMode: String, Sendable {
    case textToImage = "txt2img"
    case imageToImage = "img2img"
    case inpainting = "inpaint"
}

/// A request with every default filled in and every field checked.
public struct ResolvedRequest: Sendable {
    // Public (the memberwise one is internal) so a database-backed queue can rebuild stored values.
    public init(prompts: [String], negativePrompts: [String], imagesPerPrompt: Int, width: Int, height: Int, steps: Int,
                guidanceScale: Double, guidanceRescale: Double, seed: UInt64, eta: Double, clipSkip: Int, strength: Double,
                scheduler: String?, initImage: RGBImage?, mask: RGBImage?, vaeTiling: Bool, promptWeighting: PromptWeighting,
                padCondUncond: Bool) {
        (self.prompts, self.negativePrompts, self.imagesPerPrompt, self.width, self.height, self.steps) = (prompts, negativePrompts, imagesPerPrompt, width, height, steps)
        (self.guidanceScale, self.guidanceRescale, self.seed, self.eta, self.clipSkip, self.strength) = (guidanceScale, guidanceRescale, seed, eta, clipSkip, strength)
        (self.scheduler, self.initImage, self.mask, self.vaeTiling) = (scheduler, initImage, mask, vaeTiling)
        (self.promptWeighting, self.padCondUncond) = (promptWeighting, padCondUncond)
    }

    public var prompts: [String]
    public var negativePrompts: [String]
    public var imagesPerPrompt: Int
    public var width: Int
    public var height: Int
    public var steps: Int
    public var guidanceScale: Double
    public var guidanceRescale: Double
    public var seed: UInt64
    public var eta: Double
    public var clipSkip: Int
    /// 1 for text-to-image.
    public var strength: Double
    public var scheduler: String?
    public var initImage: RGBImage?
    public var mask: RGBImage?
    /// Whether the VAE runs tiled (``GenerationRequest/vaeTiling``).
    public var vaeTiling: Bool = false
    public var promptWeighting: PromptWeighting = .none
    public var padCondUncond: Bool = false

    public var mode: GenerationMode {
        mask != nil ? .inpainting : initImage != nil ? .imageToImage : .textToImage
    }
    public var batch: Int { prompts.count * imagesPerPrompt }
    /// diffusers: guidance is off at a scale of 1 or less.
    public var doClassifierFreeGuidance: Bool { guidanceScale > 1 }
}

extension GenerationRequest {
    /// Maximum steps accepted; more is almost certainly a typo and would run for hours.
    public static let maxSteps = 1000

    /// Fills defaults and validates everything before any model work (diffusers' `check_inputs`).
    /// `sizeMultiple` is the image-side multiple the model needs (VAE factor x UNet downsampling).
    public func resolved(defaults: PipelineDefaults, sizeMultiple: Int, maxTextEncoderSkip: Int) throws(RequestError) -> ResolvedRequest {
        guard !prompts.isEmpty else { throw RequestError("prompt: at least one prompt is required") }
        let negatives: [String]
        switch negativePrompts {
        case nil: negatives = Array(repeating: "", count: prompts.count)
        case let n? where n.count == prompts.count: negatives = n
        case let n? where n.count == 1: negatives = Array(repeating: n[0], count: prompts.count)
        case let n?: throw RequestError("negative prompt: got \(n.count) for \(prompts.count) prompts (give one, or one per prompt)")
        }
        guard imagesPerPrompt >= 1, imagesPerPrompt <= 64 else {
            throw RequestError("images per prompt: \(imagesPerPrompt) is outside 1...64")
        }
        var w = width, h = height
        if let image = initImage, w == nil, h == nil {
            // diffusers takes the init image's size, rounded down to the VAE's multiple; this model needs `sizeMultiple`.
            w = image.width / sizeMultiple * sizeMultiple
            h = image.height / sizeMultiple * sizeMultiple
        }
        let width = w ?? defaults.width, height = h ?? defaults.height
        for (name, v) in [("width", width), ("height", height)] {
            guard v >= sizeMultiple, v % sizeMultiple == 0 else {
                throw RequestError("\(name): \(v) is not a positive multiple of \(sizeMultiple) (the VAE downsamples by 8 and the UNet by a further \(sizeMultiple / 8))")
            }
            guard v <= 4096 else { throw RequestError("\(name): \(v) is larger than 4096") }
        }
        let steps = self.steps ?? defaults.steps
        guard steps >= 1, steps <= Self.maxSteps else { throw RequestError("steps: \(steps) is outside 1...\(Self.maxSteps)") }
        let scale = guidanceScale ?? defaults.guidanceScale
        guard scale.isFinite, scale >= 0, scale <= 100 else { throw RequestError("guidance scale: \(scale) is outside 0...100") }
        // Guidance rescale is a text-to-image default (DeciDiffusion's own pipeline); diffusers'
        // image-to-image and inpainting pipelines have none, so those modes default to 0 to match them.
        let rescale = guidanceRescale ?? (initImage != nil ? 0 : defaults.guidanceRescale)
        guard rescale.isFinite, rescale >= 0, rescale <= 1 else { throw RequestError("guidance rescale: \(rescale) is outside 0...1") }
        guard eta.isFinite, eta >= 0, eta <= 1 else { throw RequestError("eta: \(eta) is outside 0...1") }
        guard clipSkip >= 0, clipSkip <= maxTextEncoderSkip else {
            throw RequestError("clip skip: \(clipSkip) is outside 0...\(maxTextEncoderSkip)")
        }
        if promptWeighting == .a1111 {
            // Parse errors surface here, before any model work, named after their field.
            for (field, texts) in [("prompt", prompts), ("negative prompt", negatives)] {
                for text in texts {
                    do { _ = try PromptAttention.parse(text) } catch {
                        throw RequestError("\(field): \(error.description)")
                    }
                }
            }
        }
        if mask != nil && initImage == nil { throw RequestError("mask: inpainting needs an init image as well") }
        var strength = 1.0
        if initImage != nil {
            strength = self.strength ?? (mask != nil ? 1.0 : 0.8)
            guard strength.isFinite, strength > 0, strength <= 1 else { throw RequestError("strength: \(strength) is outside (0, 1]") }
            // diffusers' get_timesteps keeps int(steps * strength) steps and refuses to run none.
            guard Int(Double(steps) * strength) >= 1 else {
                throw RequestError("strength: \(strength) with \(steps) steps leaves no denoising step (int(steps * strength) must be at least 1)")
            }
        } else if let s = self.strength {
            throw RequestError("strength: \(s) is only meaningful with an init image")
        }
        return ResolvedRequest(prompts: prompts, negativePrompts: negatives, imagesPerPrompt: imagesPerPrompt, width: width,
                               height: height, steps: steps, guidanceScale: scale, guidanceRescale: rescale, seed: seed, eta: eta,
                               clipSkip: clipSkip, strength: strength, scheduler: scheduler, initImage: initImage, mask: mask,
                               vaeTiling: vaeTiling, promptWeighting: promptWeighting, padCondUncond: padCondUncond)
    }
}
