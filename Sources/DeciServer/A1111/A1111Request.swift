// A1111's txt2img / img2img bodies (modules/api/models.py, modules/processing.py) turned into the
// service's jobs. Every field is optional and unknown keys are ignored, as in A1111; a field asking
// for something this engine cannot do (hires fix, face restoration, scripts, variation seeds, ...)
// is refused naming it instead of being dropped, since dropping it would give another image than
// the one asked for. Each image is its own job with seed + i, as A1111 seeds a batch, so every
// image can be reproduced from its infotext alone.
import DeciDiffusion
import DeciImage
import Foundation

struct A1111Plan {
    /// One job per image, in order.
    var specs: [JobSpec]
    var seeds: [UInt64]
    var prompt: String
    var negativePrompt: String
    var sampler: String
    var schedule: String
    var width: Int
    var height: Int
    var steps: Int
    var cfgScale: Double
    var batchSize: Int
    var nIter: Int
    var model: String
    /// A1111's clip skip (1 = none).
    var clipSkip: Int
    var denoisingStrength: Double?
    var sendImages: Bool
    var isImg2Img: Bool
    /// img2img with a mask: how the results go back over the original.
    var overlay: Overlay?
    /// The request with defaults filled in, echoed as `parameters`.
    var echo: [String: JSONValue]

    struct Overlay {
        var original: RGBImage
        /// Full-size blurred mask (255 = generated).
        var mask: GrayImage
        /// "Only masked": where the crop goes back, and its size.
        var paste: (x: Int, y: Int, width: Int, height: Int)?
    }
}

enum A1111Request {
    /// A1111's own defaults (StableDiffusionProcessing), not the checkpoint's.
    static let defaultSteps = 50, defaultCFG = 7.0, defaultSize = 512

    /// Fields that must be absent, null or at their "off" value, with why.
    private static func refuseUnsupported(_ f: JSONFields) throws(FieldError) {
        func refuse(_ key: String, _ why: String) throws(FieldError) { throw f.fail(key, why) }
        if try f.bool("enable_hr") == true { try refuse("enable_hr", "hires fix is not supported by this engine; generate at the final size instead") }
        if try f.bool("restore_faces") == true { try refuse("restore_faces", "face restoration is not supported by this engine") }
        if try f.bool("tiling") == true { try refuse("tiling", "seamless tiling is not supported by this engine") }
        if let s = try f.stringArray("styles"), !s.isEmpty { try refuse("styles", "saved styles are not supported; put their text in the prompt") }
        if let s = try f.double("subseed_strength"), s != 0 { try refuse("subseed_strength", "variation seeds are not supported") }
        for key in ["seed_resize_from_h", "seed_resize_from_w"] {
            if let v = try f.int(key), v > 0 { try refuse(key, "resizing the seed's noise is not supported") }
        }
        if let s = try f.string("script_name"), !s.isEmpty { try refuse("script_name", "scripts are not supported by this engine") }
        if case let .object(o)? = f["alwayson_scripts"], !o.isEmpty {
            try refuse("alwayson_scripts", "extensions are not supported by this engine (got \(o.keys.sorted().joined(separator: ", ")))")
        }
        if let s = try f.string("refiner_checkpoint"), !s.isEmpty, s.lowercased() != "none" {
            try refuse("refiner_checkpoint", "refiner models are not supported")
        }
        if f.has("firstpass_image") { try refuse("firstpass_image", "hires fix is not supported by this engine") }
        if let s = try f.string("infotext"), !s.isEmpty { try refuse("infotext", "pasting an infotext is not supported; send the fields instead") }
        if let v = try f.double("s_churn"), v != 0 { try refuse("s_churn", "stochastic churn is not supported (0 only)") }
        if let v = try f.double("s_noise"), v != 1 { try refuse("s_noise", "noise scaling is not supported (1 only)") }
        if let v = try f.double("s_tmin"), v != 0 { try refuse("s_tmin", "is not supported (0 only)") }
        if let v = try f.double("s_tmax"), v != 0, v.isFinite { try refuse("s_tmax", "is not supported (0 = infinity only)") }
        if let v = try f.double("s_min_uncond"), v != 0 { try refuse("s_min_uncond", "skipping the unconditional pass is not supported (0 only)") }
        if let v = try f.double("initial_noise_multiplier"), v != 1 { try refuse("initial_noise_multiplier", "only 1 is supported") }
        if f.has("latent_mask") { try refuse("latent_mask", "a separate latent mask is not supported") }
    }

    /// The plan for one call. `model` is the checkpoint the call runs on (options or override), its
    /// pipeline when loaded gives the default scheduler's class.
    static func plan(_ body: [String: JSONValue], img2img: Bool, state: A1111State,
                     service: any JobQueue) throws(FieldError) -> A1111Plan {
        let f = JSONFields(object: body)
        try refuseUnsupported(f)
        var echo = body

        // override_settings: a model for this call, clip skip, formats.
        var model = state.currentModel
        var clipSkip = state.clipSkip
        if let o = try f.nested("override_settings") {
            if let checkpoint = try o.string("sd_model_checkpoint") { model = try state.modelName(forTitle: checkpoint, field: "override_settings.sd_model_checkpoint") }
            if let n = try o.int("CLIP_stop_at_last_layers") { clipSkip = n }
            if let fmt = try o.string("samples_format"), fmt.lowercased() != "png" {
                throw o.fail("samples_format", "only png is supported (got \"\(fmt)\")")
            }
            if let vae = try o.string("sd_vae"), !["automatic", "none"].contains(vae.lowercased()) {
                throw o.fail("sd_vae", "only the checkpoint's own VAE (\"Automatic\") is available")
            }
        }
        if let n = try f.int("clip_skip") { clipSkip = n }
        guard (1...12).contains(clipSkip) else { throw f.fail("clip_skip", "\(clipSkip) is outside 1...12 (1 = no skip)") }

        let prompt: String
        switch f["prompt"] {
        case nil: prompt = ""
        case let .string(s)?: prompt = s
        case .array?: throw f.fail("prompt", "a list of prompts is not supported; send one prompt")
        case let v?: throw f.fail("prompt", "expected a string, got \(v.typeName)")
        }
        let negative: String
        switch f["negative_prompt"] {
        case nil: negative = ""
        case let .string(s)?: negative = s
        case .array?: throw f.fail("negative_prompt", "a list of negative prompts is not supported; send one")
        case let v?: throw f.fail("negative_prompt", "expected a string, got \(v.typeName)")
        }
        // <lora:NAME:SCALE> tags: the service merges them from its LoRA folder (and strips them from
        // the prompt); without a folder they cannot mean anything here.
        let hasTags = [prompt, negative].contains { $0.range(of: "<lora:", options: .caseInsensitive) != nil
            || $0.range(of: "<lyco:", options: .caseInsensitive) != nil }
        let tagsDisabled = try f.bool("disable_extra_networks") == true
        if hasTags && !tagsDisabled && service.configuration.loraDirectory == nil {
            throw f.fail("prompt", "<lora:...> tags need a LoRA folder: start the server with --lora-dir")
        }

        let batchSize = try f.int("batch_size") ?? 1
        let nIter = try f.int("n_iter") ?? 1
        guard batchSize >= 1 else { throw f.fail("batch_size", "\(batchSize) must be at least 1") }
        guard nIter >= 1 else { throw f.fail("n_iter", "\(nIter) must be at least 1") }
        let count = batchSize * nIter
        let maxImages = service.configuration.limits.maxBatch * 4
        guard count <= maxImages else {
            throw f.fail("batch_size", "batch_size x n_iter = \(count) images is over this server's limit of \(maxImages) per call")
        }
        let width = try f.int("width") ?? defaultSize
        let height = try f.int("height") ?? defaultSize
        let steps = try f.int("steps") ?? defaultSteps
        let cfg = try f.double("cfg_scale") ?? defaultCFG

        // Seeds: -1, null, "" or anything not an integer means random (A1111 draws < 4294967294).
        let seed: UInt64
        switch f["seed"] {
        case let .number(n)? where n >= 0 && n.rounded() == n && n < 1.8e19: seed = UInt64(n)
        case let .string(s)? where UInt64(s) != nil: seed = UInt64(s) ?? 0
        default: seed = UInt64.random(in: 0..<4_294_967_294)
        }
        let seeds = (0..<count).map { seed &+ UInt64($0) }

        let checkpointClass = service.loadedPipeline(model)?.schedulerConfig.className
        var samplerName = try f.string("sampler_name")
        if samplerName == nil { samplerName = try f.string("sampler_index") }
        let resolved = try A1111Samplers.resolve(sampler: samplerName,
                                                 samplerField: f.has("sampler_name") ? "sampler_name" : "sampler_index",
                                                 schedule: f.string("scheduler"),
                                                 checkpointDefault: A1111Samplers.name(forClass: checkpointClass))
        // With no sampler named, the checkpoint's own scheduler runs (for DeciDiffusion its DDIM
        // v-prediction configuration), named by its A1111 name when that is the same thing.
        let engineScheduler = resolved.engine ?? A1111Samplers.name(forClass: checkpointClass)
        var eta = 0.0
        if resolved.sampler == "DDIM" { eta = try f.double("eta") ?? state.etaDDIM }

        var base = GenerationRequest(prompt: prompt, negativePrompt: negative)
        // A1111 clients write A1111's attention syntax and long prompts.
        base.promptWeighting = .a1111
        (base.width, base.height, base.steps, base.guidanceScale) = (width, height, steps, cfg)
        base.scheduler = engineScheduler
        base.clipSkip = clipSkip - 1
        base.eta = eta

        var overlay: A1111Plan.Overlay?
        var strength: Double?
        if img2img {
            strength = try f.double("denoising_strength") ?? 0.75
            guard let s = strength, (0...1).contains(s) else { throw f.fail("denoising_strength", "\(strength ?? 0) is outside 0...1") }
            let images = try f.stringArray("init_images") ?? []
            guard let first = images.first else { throw f.fail("init_images", "required: one base64 image") }
            let image = try decodeImage(first, field: "init_images[0]").image
            let resizeMode = try f.int("resize_mode") ?? 0
            base.strength = s
            if let maskText = try f.string("mask"), !maskText.isEmpty {
                let plan = try maskPlan(f, maskText: maskText, image: image, width: width, height: height, resizeMode: resizeMode)
                base.initImage = plan.initImage
                do { base.mask = try plan.mask.rgb() } catch { throw FieldError(field: "mask", "\(error)") }
                overlay = plan.overlay
            } else {
                base.initImage = try resized(image, toWidth: width, height: height, mode: resizeMode, field: "resize_mode")
            }
        }

        let keep = state.previewEvery
        let specs = seeds.map { s in
            JobSpec(request: base, seed: s, model: model, preview: PreviewOptions(every: keep), keepPartialOnCancel: true)
        }
        // The echo: the request as sent with A1111's defaults filled in.
        let defaults: [String: JSONValue] = [
            "prompt": .string(prompt), "negative_prompt": .string(negative), "seed": .number(Double(seed)),
            "sampler_name": .string(resolved.sampler), "scheduler": .string(resolved.schedule), "batch_size": .number(Double(batchSize)),
            "n_iter": .number(Double(nIter)), "steps": .number(Double(steps)), "cfg_scale": .number(cfg),
            "width": .number(Double(width)), "height": .number(Double(height)),
        ]
        echo.merge(defaults) { _, new in new }
        if let strength { echo["denoising_strength"] = .number(strength) }
        if try f.bool("include_init_images") != true { echo["init_images"] = nil; echo["mask"] = nil }
        return A1111Plan(specs: specs, seeds: seeds, prompt: prompt, negativePrompt: negative, sampler: resolved.sampler,
                         schedule: resolved.schedule, width: width, height: height, steps: steps, cfgScale: cfg,
                         batchSize: batchSize, nIter: nIter, model: model, clipSkip: clipSkip, denoisingStrength: strength,
                         sendImages: try f.bool("send_images") ?? true, isImg2Img: img2img, overlay: overlay, echo: echo)
    }

    /// The mask's part of img2img: binarise / invert / blur, then either the whole image or, with
    /// inpaint_full_res (A1111's default), the masked region's crop at the requested size.
    /// `image` is the init image as sent: "only masked" crops it at its own resolution, the whole
    /// image path resizes it (and the mask) to the processing size first, as A1111 does.
    private static func maskPlan(_ f: JSONFields, maskText: String, image: RGBImage, width: Int, height: Int, resizeMode: Int)
        throws(FieldError) -> (initImage: RGBImage, mask: GrayImage, overlay: A1111Plan.Overlay) {
        let decoded = try decodeImage(maskText, field: "mask")
        var mask = GrayImage.mask(from: decoded, round: try f.bool("mask_round") ?? true)
        do {
            if mask.width != image.width || mask.height != image.height {
                // A1111 resizes the mask with the init image to the processing size.
                let resized = try mask.rgb().resizedLanczos(width: image.width, height: image.height)
                mask = GrayImage(width: resized.width, height: resized.height, pixels: stride(from: 0, to: resized.pixels.count, by: 3).map { resized.pixels[$0] })
            }
        } catch { throw FieldError(field: "mask", "cannot resize the mask to \(image.width)x\(image.height): \(error)") }
        // 0/1 in A1111's model; some clients send a boolean.
        if try f.bool("inpainting_mask_invert") == true { mask = mask.inverted }
        let blur = try f.double("mask_blur")
        let blurX = try f.double("mask_blur_x") ?? blur ?? 4, blurY = try f.double("mask_blur_y") ?? blur ?? 4
        guard blurX >= 0, blurY >= 0, blurX <= 64, blurY <= 64 else { throw f.fail("mask_blur", "must be within 0...64") }
        let overlayMask = mask.gaussianBlurred(sigmaX: blurX, sigmaY: blurY)

        let fillMode = try f.int("inpainting_fill") ?? 0
        guard fillMode == 0 || fillMode == 1 else {
            throw f.fail("inpainting_fill", "\(fillMode) (\(fillMode == 2 ? "latent noise" : fillMode == 3 ? "latent nothing" : "unknown")) is not supported; use 0 (fill) or 1 (original)")
        }
        let fullRes = try f.bool("inpaint_full_res") ?? true
        let padding = try f.int("inpaint_full_res_padding") ?? 0
        guard padding >= 0 else { throw f.fail("inpaint_full_res_padding", "must be 0 or more") }

        do {
            if fullRes, let region = overlayMask.cropRegion(padding: padding) {
                let r = A1111Inpainting.expandCropRegion(region, width: width, height: height, imageWidth: image.width, imageHeight: image.height)
                var crop = try A1111Inpainting.crop(image, r).resizedLanczos(width: width, height: height)
                let cropMaskRGB = try overlayMask.cropped(r).rgb().resizedLanczos(width: width, height: height)
                let cropMask = GrayImage(width: width, height: height, pixels: stride(from: 0, to: cropMaskRGB.pixels.count, by: 3).map { cropMaskRGB.pixels[$0] })
                if fillMode == 0 { crop = try A1111Inpainting.fill(crop, mask: cropMask) }
                return (crop, cropMask, .init(original: image, mask: overlayMask, paste: (r.0, r.1, r.2 - r.0, r.3 - r.1)))
            }
            let processed = try resized(image, toWidth: width, height: height, mode: resizeMode, field: "resize_mode")
            var processedMask = overlayMask
            if processed.width != image.width || processed.height != image.height {
                let m = try resized(overlayMask.rgb(), toWidth: width, height: height, mode: resizeMode, field: "resize_mode")
                processedMask = GrayImage(width: m.width, height: m.height, pixels: stride(from: 0, to: m.pixels.count, by: 3).map { m.pixels[$0] })
            }
            let start = fillMode == 0 ? try A1111Inpainting.fill(processed, mask: processedMask) : processed
            return (start, processedMask, .init(original: processed, mask: processedMask, paste: nil))
        } catch let e as FieldError { throw e } catch {
            throw FieldError(field: "mask", "cannot prepare the masked image: \(error)")
        }
    }

    /// resize_mode 0 (just resize) and 1 (crop and resize); the others are refused.
    private static func resized(_ image: RGBImage, toWidth w: Int, height h: Int, mode: Int, field: String) throws(FieldError) -> RGBImage {
        guard image.width != w || image.height != h else { return image }
        guard w > 0, h > 0, w <= 8192, h <= 8192 else { return image }  // the service reports bad sizes itself
        do {
            switch mode {
            case 0:
                return try image.resizedLanczos(width: w, height: h)
            case 1:
                // Scale to cover, centre-crop the excess (images.resize_image mode 1).
                let scale = max(Double(w) / Double(image.width), Double(h) / Double(image.height))
                let sw = max(w, Int((Double(image.width) * scale).rounded())), sh = max(h, Int((Double(image.height) * scale).rounded()))
                let scaled = try image.resizedLanczos(width: sw, height: sh)
                let x = (sw - w) / 2, y = (sh - h) / 2
                return try A1111Inpainting.crop(scaled, (x, y, x + w, y + h))
            default:
                throw FieldError(field: field, "\(mode) is not supported; use 0 (just resize) or 1 (crop and resize)")
            }
        } catch let e as FieldError { throw e } catch {
            throw FieldError(field: field, "cannot resize the init image: \(error)")
        }
    }

    /// Raw base64 or a data: URL; never a URL to fetch (A1111 only does that with an option on).
    static func decodeImage(_ text: String, field: String) throws(FieldError) -> DecodedImage {
        if text.hasPrefix("http://") || text.hasPrefix("https://") {
            throw FieldError(field: field, "image URLs are not fetched; send the image as base64")
        }
        var payload = Substring(text)
        if payload.hasPrefix("data:"), let comma = payload.firstIndex(of: ",") { payload = payload[payload.index(after: comma)...] }
        let cleaned = payload.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: cleaned) ?? Data(base64Encoded: JobRequestBody.padded(cleaned)) else {
            throw FieldError(field: field, "not valid base64")
        }
        do { return try ImageFile.decode([UInt8](data), path: field) } catch {
            throw FieldError(field: field, "cannot decode the image (\(error))")
        }
    }
}
